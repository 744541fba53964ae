import { useEffect, useState } from 'preact/hooks';
import { parameters, type RevenueByProduct, type RevenueSeries, type RevenueTotals } from '../../client/index.js';
import { ApiError, call, client } from './api';
import { RevenueChart, type ChartGranularity } from './chart';
import { addDays, daysInclusive, formatRange, isDate, PRESETS, presetRange, today, type Preset, type Range } from './dates';
import { formatInteger, formatMoney, formatPercent, formatSignedInteger, formatSignedMoney } from './format';
import { hashParams, replaceRevenueParams } from './routes';

/**
 * The API's limits. A question names at most `maxItems` products, and one call lists at most
 * `maximum` products: both from the document. A series has at most 3660 periods, so a daily one
 * covers at most 3660 days: the server checks that in its handler (it depends on the range, so
 * no parameter schema can state it) and the document says it only in words, hence the copy here.
 */
const MAX_DAY_SERIES = 3660;
const MAX_PRODUCTS = parameters['/api/metrics/revenue'].get.product_id.maxItems;
const ALL_PRODUCTS = parameters['/api/metrics/revenue/by-product'].get.limit.maximum;
const TOP_PRODUCTS = 10;

type RankBy = RevenueByProduct['order'];

const GRANULARITIES: Array<{ id: ChartGranularity; label: string }> = [
  { id: 'day', label: 'Day' },
  { id: 'week', label: 'Week' },
  { id: 'month', label: 'Month' },
];

interface Choices {
  /** null: not chosen yet (the last 30 days when they have sales, else all time). */
  preset: Preset | 'custom' | null;
  custom: Range | null;
  granularity: ChartGranularity;
  products: string[];
  rankBy: RankBy;
}

function readChoices(): Choices {
  const params = hashParams();
  const range = params.get('range');
  const start = params.get('start') ?? '';
  const end = params.get('end') ?? '';
  const custom = range === 'custom' && isDate(start) && isDate(end) ? { start, end } : null;
  const preset = PRESETS.some((p) => p.id === range) ? (range as Preset) : custom ? 'custom' : null;
  const g = params.get('g');
  return {
    preset,
    custom,
    granularity: g === 'week' || g === 'month' ? g : 'day',
    products: params.getAll('product').filter(Boolean).slice(0, MAX_PRODUCTS),
    rankBy: params.get('rank') === 'orders' ? 'orders' : 'revenue',
  };
}

function writeChoices(choices: Choices): void {
  const params = new URLSearchParams();
  if (choices.preset) params.set('range', choices.preset);
  if (choices.preset === 'custom' && choices.custom) {
    params.set('start', choices.custom.start);
    params.set('end', choices.custom.end);
  }
  if (choices.granularity !== 'day') params.set('g', choices.granularity);
  for (const id of choices.products) params.append('product', id);
  if (choices.rankBy !== 'revenue') params.set('rank', choices.rankBy);
  replaceRevenueParams(params);
}

interface Figures {
  key: string;
  totals: RevenueTotals;
  series: RevenueSeries;
  top: RevenueByProduct;
}

export function Revenue() {
  const [choices, setChoices] = useState<Choices>(readChoices);
  /** First and last sale dates: undefined while loading, null when there are no sales at all. */
  const [bounds, setBounds] = useState<Range | null | undefined>(undefined);
  const [productIds, setProductIds] = useState<string[]>([]);
  const [figures, setFigures] = useState<Figures | null>(null);
  const [error, setError] = useState<string | null>(null);

  const update = (change: Partial<Choices>) => setChoices((current) => ({ ...current, ...change }));

  useEffect(() => writeChoices(choices), [choices]);

  useEffect(() => {
    const abort = new AbortController();
    const signal = abort.signal;
    Promise.all([
      call(client.GET('/api/metrics/revenue/series', { params: { query: { granularity: 'year' } }, signal })),
      call(client.GET('/api/metrics/revenue/by-product', { params: { query: { limit: ALL_PRODUCTS } }, signal })),
    ]).then(
      ([years, products]) => {
        setBounds(years.start && years.end && years.periods.length > 0 ? { start: years.start, end: years.end } : null);
        setProductIds(products.products.map((p) => p.product_id).sort());
      },
      (failure: unknown) => {
        if ((failure as Error).name !== 'AbortError') setError(message(failure));
      },
    );
    return () => abort.abort();
  }, []);

  const now = today();
  const preset: Preset | 'custom' =
    choices.preset ?? (bounds && bounds.end >= addDays(now, -29) && bounds.start <= now ? 'last30' : 'all');
  const range = preset === 'custom' ? choices.custom : presetRange(preset, bounds ?? null, now);
  const rangeError = range && range.start > range.end ? 'The start date is after the end date.' : null;
  const dayAllowed = !range || daysInclusive(range.start, range.end) <= MAX_DAY_SERIES;
  const granularity: ChartGranularity = choices.granularity === 'day' && !dayAllowed ? 'week' : choices.granularity;
  const key = range && !rangeError ? JSON.stringify([range, granularity, choices.products, choices.rankBy]) : null;

  useEffect(() => {
    if (!key || !range || bounds === undefined || bounds === null) return;
    const abort = new AbortController();
    const filter = { start: range.start, end: range.end, product_id: choices.products };
    const signal = abort.signal;
    Promise.all([
      call(client.GET('/api/metrics/revenue', { params: { query: { ...filter, compare: 'previous_period' } }, signal })),
      call(client.GET('/api/metrics/revenue/series', { params: { query: { ...filter, granularity } }, signal })),
      call(
        client.GET('/api/metrics/revenue/by-product', {
          params: { query: { start: range.start, end: range.end, limit: TOP_PRODUCTS, order: choices.rankBy } },
          signal,
        }),
      ),
    ]).then(
      ([totals, series, top]) => {
        setFigures({ key, totals, series, top });
        setError(null);
      },
      (failure: unknown) => {
        if ((failure as Error).name !== 'AbortError') setError(message(failure));
      },
    );
    return () => abort.abort();
    // key holds every input of the question.
  }, [key, bounds]);

  const loading = key !== null && figures?.key !== key;
  const shown = figures;

  return (
    <div class="page">
      <div class="page-head">
        <h1>Revenue</h1>
        {range ? <p class="muted range-label">{formatRange(range)}</p> : null}
      </div>

      <Controls
        preset={preset}
        range={range}
        onPreset={(p) => update({ preset: p, custom: null })}
        onRange={(r) => update({ preset: 'custom', custom: r })}
        products={choices.products}
        productOptions={productIds}
        onProducts={(products) => update({ products })}
        disabled={bounds === null}
      />

      {error ? (
        <p class="error banner" role="alert">
          {error}
        </p>
      ) : null}
      {rangeError ? (
        <p class="error banner" role="alert">
          {rangeError}
        </p>
      ) : null}

      {bounds === null ? (
        <section class="card empty" aria-labelledby="no-sales">
          <h2 id="no-sales">No sales yet: upload a CSV in Imports</h2>
          <p class="muted">
            A file with the columns <code>date</code>, <code>order_id</code>, <code>product_id</code> and <code>amount_sgd</code>;
            revenue shows here as soon as it is imported.
          </p>
          <a class="button primary" href="#/imports">
            Go to Imports
          </a>
        </section>
      ) : shown === null ? (
        rangeError ? null : (
          <p class="muted loading" aria-live="polite">
            Loading revenue…
          </p>
        )
      ) : (
        <div class={loading ? 'stack stale' : 'stack'} aria-busy={loading}>
          <Kpis totals={shown.totals} />
          <section class="card" aria-labelledby="chart-title">
            <div class="card-head">
              <h2 id="chart-title">
                Revenue by {granularity}
                {choices.products.length > 0 ? <span class="muted"> · {choices.products.length} selected products</span> : null}
              </h2>
              <div class="segmented" role="group" aria-label="Chart granularity">
                {GRANULARITIES.map((g) => (
                  <button
                    type="button"
                    aria-pressed={granularity === g.id}
                    disabled={g.id === 'day' && !dayAllowed}
                    title={g.id === 'day' && !dayAllowed ? `Days are shown for ranges up to ${MAX_DAY_SERIES} days` : undefined}
                    onClick={() => update({ granularity: g.id })}
                  >
                    {g.label}
                  </button>
                ))}
              </div>
            </div>
            {shown.totals.sale_count === 0 ? (
              <div class="empty-inline">
                <p>
                  No sales {choices.products.length > 0 ? 'of the selected products ' : ''}in {range ? formatRange(range) : 'this range'}.
                </p>
                <p class="muted">
                  {preset !== 'all' ? (
                    <button type="button" class="link" onClick={() => update({ preset: 'all', custom: null })}>
                      Show all time
                    </button>
                  ) : null}
                  {choices.products.length > 0 ? (
                    <>
                      {' · '}
                      <button type="button" class="link" onClick={() => update({ products: [] })}>
                        Clear the product filter
                      </button>
                    </>
                  ) : null}
                  {' · '}
                  <a href="#/imports">Upload more data in Imports</a>
                </p>
              </div>
            ) : (
              <RevenueChart
                periods={shown.series.periods}
                granularity={shown.series.granularity as ChartGranularity}
                total={shown.totals.total_revenue}
                rangeLabel={shown.totals.start && shown.totals.end ? formatRange({ start: shown.totals.start, end: shown.totals.end }) : ''}
              />
            )}
          </section>
          <TopProducts
            top={shown.top}
            rankBy={choices.rankBy}
            onRankBy={(rankBy) => update({ rankBy })}
            selected={choices.products}
            onToggle={(id) =>
              update({
                products: choices.products.includes(id)
                  ? choices.products.filter((p) => p !== id)
                  : [...choices.products, id].slice(0, MAX_PRODUCTS),
              })
            }
          />
        </div>
      )}
    </div>
  );
}

function message(failure: unknown): string {
  return failure instanceof ApiError ? failure.message : `Something went wrong: ${String(failure)}`;
}

function Controls(props: {
  preset: Preset | 'custom';
  range: Range | null;
  onPreset: (preset: Preset) => void;
  onRange: (range: Range) => void;
  products: string[];
  productOptions: string[];
  onProducts: (products: string[]) => void;
  disabled: boolean;
}) {
  const { range } = props;
  const setBound = (which: 'start' | 'end', value: string) => {
    if (!isDate(value)) return;
    const other = range ?? { start: value, end: value };
    props.onRange({ ...other, [which]: value });
  };
  return (
    <section class="card controls" aria-label="Date range and product filter">
      <div class="presets" role="group" aria-label="Date range">
        {PRESETS.map((p) => (
          <button type="button" aria-pressed={props.preset === p.id} onClick={() => props.onPreset(p.id)} disabled={props.disabled}>
            {p.label}
          </button>
        ))}
      </div>
      <div class="control-row">
        <div class="dates">
          <label>
            <span>From</span>
            <input
              type="date"
              value={range?.start ?? ''}
              disabled={props.disabled}
              onChange={(e) => setBound('start', e.currentTarget.value)}
            />
          </label>
          <label>
            <span>To</span>
            <input
              type="date"
              value={range?.end ?? ''}
              disabled={props.disabled}
              onChange={(e) => setBound('end', e.currentTarget.value)}
            />
          </label>
        </div>
        <ProductFilter
          selected={props.products}
          options={props.productOptions}
          onChange={props.onProducts}
          disabled={props.disabled}
        />
      </div>
    </section>
  );
}

function ProductFilter(props: { selected: string[]; options: string[]; onChange: (ids: string[]) => void; disabled: boolean }) {
  const [text, setText] = useState('');
  const full = props.selected.length >= MAX_PRODUCTS;
  const add = (event: Event) => {
    event.preventDefault();
    const id = text.trim();
    if (!id || full) return;
    if (!props.selected.includes(id)) props.onChange([...props.selected, id]);
    setText('');
  };
  return (
    <form class="product-filter" onSubmit={add}>
      <label for="product-input">Products</label>
      <div class="input-row">
        <input
          id="product-input"
          list="product-options"
          autocomplete="off"
          placeholder={props.selected.length === 0 ? 'All products · type an id' : 'Add another product'}
          value={text}
          disabled={props.disabled || full}
          onInput={(e) => setText(e.currentTarget.value)}
        />
        <button type="submit" disabled={props.disabled || full || !text.trim()}>
          Add
        </button>
      </div>
      <datalist id="product-options">
        {props.options.map((id) => (
          <option value={id} />
        ))}
      </datalist>
      {props.selected.length > 0 ? (
        <ul class="chips" aria-label="Selected products">
          {props.selected.map((id) => (
            <li class="chip">
              <span>{id}</span>
              <button type="button" aria-label={`Remove ${id}`} onClick={() => props.onChange(props.selected.filter((p) => p !== id))}>
                ×
              </button>
            </li>
          ))}
          <li>
            <button type="button" class="link" onClick={() => props.onChange([])}>
              Clear
            </button>
          </li>
        </ul>
      ) : null}
    </form>
  );
}

type Direction = 'up' | 'down' | 'flat';

function direction(sign: string | number | null): Direction {
  if (sign === null) return 'flat';
  const text = String(sign);
  if (/^-/.test(text)) return 'down';
  return /[1-9]/.test(text) ? 'up' : 'flat';
}

function Kpis({ totals }: { totals: RevenueTotals }) {
  const change = totals.change;
  const previous = totals.previous;
  return (
    <section class="kpis" aria-label="Key figures">
      <Kpi
        id="revenue"
        label="Revenue"
        raw={totals.total_revenue}
        display={formatMoney(totals.total_revenue)}
        percent={change?.total_revenue.percent ?? null}
        absolute={change ? formatSignedMoney(change.total_revenue.absolute) : null}
        sign={change?.total_revenue.absolute ?? null}
        previous={previous ? { range: previous, hadAny: previous.sale_count > 0 } : null}
      />
      <Kpi
        id="orders"
        label="Orders"
        raw={String(totals.order_count)}
        display={formatInteger(totals.order_count)}
        percent={change?.order_count.percent ?? null}
        absolute={change ? formatSignedInteger(change.order_count.absolute) : null}
        sign={change?.order_count.absolute ?? null}
        previous={previous ? { range: previous, hadAny: previous.order_count > 0 } : null}
      />
      <Kpi
        id="aov"
        label="Average order value"
        raw={totals.average_order_value ?? ''}
        display={formatMoney(totals.average_order_value)}
        percent={change?.average_order_value.percent ?? null}
        absolute={change ? formatSignedMoney(change.average_order_value.absolute) : null}
        sign={change?.average_order_value.absolute ?? null}
        previous={previous ? { range: previous, hadAny: previous.order_count > 0 } : null}
      />
    </section>
  );
}

function Kpi(props: {
  id: string;
  label: string;
  raw: string;
  display: string;
  percent: string | null;
  absolute: string | null;
  sign: string | number | null;
  previous: { range: Range; hadAny: boolean } | null;
}) {
  const percent = formatPercent(props.percent);
  const dir = direction(props.sign);
  return (
    <article class="card kpi" data-kpi={props.id} data-value={props.raw}>
      <h2 class="kpi-label">{props.label}</h2>
      <p class="kpi-value">{props.display}</p>
      {props.previous ? (
        <p class="kpi-change" data-change={props.percent ?? ''}>
          {percent !== null ? (
            <>
              <span class={`delta delta-${dir}`}>
                <span aria-hidden="true">{dir === 'up' ? '▲' : dir === 'down' ? '▼' : '■'}</span>{' '}
                <span class="visually-hidden">{dir === 'up' ? 'up' : dir === 'down' ? 'down' : 'unchanged'} </span>
                {percent}
              </span>{' '}
              <span class="muted">{props.absolute}</span>
            </>
          ) : (
            <span class="muted">{props.previous.hadAny ? 'no comparable figure' : 'no sales'} in the previous period</span>
          )}
          <span class="muted kpi-versus">vs {formatRange(props.previous.range)}</span>
        </p>
      ) : null}
    </article>
  );
}

function TopProducts(props: {
  top: RevenueByProduct;
  rankBy: RankBy;
  onRankBy: (rank: RankBy) => void;
  selected: string[];
  onToggle: (id: string) => void;
}) {
  const { products } = props.top;
  return (
    <section class="card" aria-labelledby="top-title">
      <div class="card-head">
        <h2 id="top-title">Top products</h2>
        <label class="inline-select">
          <span>Rank by</span>
          <select value={props.rankBy} onChange={(e) => props.onRankBy(e.currentTarget.value === 'orders' ? 'orders' : 'revenue')}>
            <option value="revenue">Revenue</option>
            <option value="orders">Orders</option>
          </select>
        </label>
      </div>
      {props.selected.length > 0 ? (
        <p class="muted note">This table ranks all products; the filter applies to the figures and the chart above.</p>
      ) : null}
      {products.length === 0 ? (
        <p class="empty-inline">No products sold in this range.</p>
      ) : (
        <div class="table-wrap">
          <table class="table" data-table="top-products">
            <thead>
              <tr>
                <th scope="col" class="num rank">
                  #
                </th>
                <th scope="col">Product</th>
                <th scope="col" class="num">
                  Revenue
                </th>
                <th scope="col" class="num share">
                  Share
                </th>
                <th scope="col" class="num">
                  Orders
                </th>
                <th scope="col">
                  <span class="visually-hidden">Filter</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {products.map((p, i) => {
                const on = props.selected.includes(p.product_id);
                return (
                  <tr class={on ? 'selected' : ''} data-product={p.product_id}>
                    <td class="num muted rank">{i + 1}</td>
                    <td class="product">{p.product_id}</td>
                    <td class="num" data-value={p.revenue}>
                      {formatMoney(p.revenue)}
                    </td>
                    <td class="num share">
                      <span>{p.share === null ? '—' : `${p.share}%`}</span>
                      <span class="share-bar" aria-hidden="true">
                        <span style={{ width: `${Math.max(0, Math.min(100, Number(p.share ?? 0)))}%` }} />
                      </span>
                    </td>
                    <td class="num">{formatInteger(p.order_count)}</td>
                    <td class="action">
                      <button
                        type="button"
                        class="small"
                        aria-pressed={on}
                        aria-label={on ? `Stop filtering by ${p.product_id}` : `Show only ${p.product_id}`}
                        onClick={() => props.onToggle(p.product_id)}
                      >
                        {on ? 'Filtered' : 'Filter'}
                      </button>
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}
