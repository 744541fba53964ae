import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';
import { formatDate, formatMonth, formatRange, toUtcMs } from './dates';
import { compactMoney, formatInteger, formatMoney } from './format';
import type { Granularity, SeriesPeriod as Period } from '../../client/index.js';

/** The granularities the chart draws (the API also has quarters and years). */
export type ChartGranularity = Extract<Granularity, 'day' | 'week' | 'month'>;

const HEIGHT = 300;

function periodLabel(period: Period, granularity: ChartGranularity): string {
  const label =
    granularity === 'month' ? formatMonth(period.period) : granularity === 'week' ? `Week of ${formatDate(period.period)}` : formatDate(period.period);
  return period.partial ? `${label} (${formatRange(period)} only)` : label;
}

/** Axis labels: "27 Oct" for days and weeks, "Oct 2026" for months. */
const shortDay = new Intl.DateTimeFormat('en-SG', { day: 'numeric', month: 'short', timeZone: 'UTC' });
function tick(date: string, granularity: ChartGranularity): string {
  return granularity === 'month' ? formatMonth(date) : shortDay.format(new Date(toUtcMs(date)));
}

/**
 * Revenue per period with uPlot: a line over days, bars over weeks and months. The numbers drawn
 * are floats (a chart needs them); every figure shown as text comes from the API's strings.
 */
export function RevenueChart({
  periods,
  granularity,
  total,
  rangeLabel,
}: {
  periods: Period[];
  granularity: ChartGranularity;
  /** The range's total revenue (the API's string), shown while no period is pointed at. */
  total: string;
  rangeLabel: string;
}) {
  const box = useRef<HTMLDivElement>(null);

  useEffect(() => {
    const element = box.current;
    if (!element) return;
    // Days on a time axis; weeks and months as evenly spaced bars, one per period.
    const bars = granularity !== 'day';
    const xs = bars ? periods.map((_p, i) => i) : periods.map((p) => toUtcMs(p.period) / 1000);
    const ys = periods.map((p) => Number(p.revenue));
    const width = () => Math.max(element.clientWidth, 240);
    const dayTicks = (splits: number[], increment: number) =>
      splits.map((ts) => {
        const date = new Date(ts * 1000).toISOString().slice(0, 10);
        return increment >= 28 * 86_400 ? formatMonth(date) : tick(date, 'day');
      });
    const barTicks = (splits: number[]) =>
      splits.map((i) => (Number.isInteger(i) && periods[i] ? tick(periods[i].period, granularity) : ''));
    const plot = new uPlot(
      {
        width: width(),
        height: HEIGHT,
        // Periods are calendar dates: label them in UTC, where they were made.
        tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), 'Etc/UTC'),
        cursor: { drag: { x: false, y: false }, points: { size: 8 } },
        legend: { live: true },
        scales: {
          x: bars
            ? { time: false, range: (_u, min, max) => [min - 0.5, max + 0.5] }
            : { time: true, range: (_u, min, max) => (min === max ? [min - 86_400, max + 86_400] : [min, max]) },
          y: { range: (_u, min, max) => [Math.min(0, min * 1.1), max > 0 ? max * 1.1 : 1] },
        },
        axes: [
          {
            stroke: '#5b6b7f',
            grid: { show: !bars, stroke: '#eef1f5' },
            ticks: { stroke: '#dde3ea' },
            space: 56,
            ...(bars ? { incrs: [1, 2, 3, 4, 6, 12, 24, 52, 104, 260, 520] } : {}),
            values: (_u, splits, _axis, _space, increment) => (bars ? barTicks(splits) : dayTicks(splits, increment)),
          },
          {
            stroke: '#5b6b7f',
            grid: { stroke: '#eef1f5' },
            ticks: { show: false },
            size: 64,
            values: (_u, splits) => splits.map(compactMoney),
          },
        ],
        series: [
          {
            label: 'Period',
            value: (_u, _v, _s, index) => (index === null || !periods[index] ? rangeLabel : periodLabel(periods[index], granularity)),
          },
          {
            label: 'Revenue',
            stroke: '#2563eb',
            width: bars ? 1 : 2,
            fill: bars ? 'rgba(37, 99, 235, 0.78)' : 'rgba(37, 99, 235, 0.10)',
            points: { show: !bars && periods.length <= 62, size: 5 },
            paths: bars ? uPlot.paths.bars!({ size: [0.65, 64], gap: 2 }) : undefined,
            value: (_u, _v, _s, index) => (index === null || !periods[index] ? formatMoney(total) : formatMoney(periods[index].revenue)),
          },
        ],
      },
      [xs, ys],
      element,
    );
    const resize = new ResizeObserver(() => plot.setSize({ width: width(), height: HEIGHT }));
    resize.observe(element);
    return () => {
      resize.disconnect();
      plot.destroy();
    };
  }, [periods, granularity, total, rangeLabel]);

  const peak = periods.reduce<Period | undefined>(
    (best, p) => (best === undefined || Number(p.revenue) > Number(best.revenue) ? p : best),
    undefined,
  );
  const first = periods[0];
  const last = periods[periods.length - 1];
  const summary =
    first && last && peak
      ? `Revenue by ${granularity}, ${periods.length} periods from ${periodLabel(first, granularity)} to ${periodLabel(last, granularity)}; ` +
        `highest ${formatMoney(peak.revenue)} (${periodLabel(peak, granularity)}).`
      : 'No periods to show.';

  return (
    <>
      <div
        class="chart"
        ref={box}
        role="img"
        aria-label={summary}
        data-granularity={granularity}
        data-points={periods.length}
      />
      <details class="chart-table">
        <summary>The figures as a table</summary>
        <div class="table-wrap">
          <table class="table">
            <thead>
              <tr>
                <th scope="col">{granularity === 'day' ? 'Day' : granularity === 'week' ? 'Week' : 'Month'}</th>
                <th scope="col" class="num">
                  Revenue
                </th>
                <th scope="col" class="num">
                  Orders
                </th>
              </tr>
            </thead>
            <tbody>
              {periods.map((p) => (
                <tr>
                  <td>{periodLabel(p, granularity)}</td>
                  <td class="num">{formatMoney(p.revenue)}</td>
                  <td class="num">{formatInteger(p.order_count)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      </details>
    </>
  );
}
