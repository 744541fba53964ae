import { readFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { buildApp } from '../src/app.js';
import { parseDatabaseUrl } from '../src/config.js';
import { openDatabase } from '../src/db/dialects/index.js';
import { ImportRuns } from '../src/imports/import-progress.js';
import { Lifecycle } from '../src/lifecycle.js';
import { Telemetry, type Readiness } from '../src/telemetry.js';
import { testConfig } from './support/config.js';
import { csv, orderId, useHarness } from './support/harness.js';

const root = path.resolve(import.meta.dirname, '..');
const ALERTS = path.join(root, 'ops/alerts.yml');
const DASHBOARDS = [path.join(root, 'ops/grafana/dashboards/zinc.json')];
/** Series Prometheus makes itself for every target: never in an exporter's /metrics. */
const MADE_BY_PROMETHEUS = new Set(['up']);
/** Labels Prometheus adds to every scraped series (the target's), and the buckets' `le`. */
const TARGET_LABELS = new Set(['job', 'instance', 'le']);

/** One PromQL expression and where it comes from, for the failure message. */
interface Expression {
  where: string;
  expr: string;
}

interface RuleFile {
  groups: { name: string; rules: { alert?: string; record?: string; expr: string }[] }[];
}

function ruleFile(): RuleFile {
  return parse(readFileSync(ALERTS, 'utf8')) as RuleFile;
}

/** Every rule's expression in ops/alerts.yml, alerts and recording rules alike. */
function ruleExpressions(): Expression[] {
  return ruleFile().groups.flatMap((g) => g.rules.map((r) => ({ where: `ops/alerts.yml ${r.alert ?? r.record}`, expr: String(r.expr) })));
}

/** The series names ops/alerts.yml records: known to Prometheus once it loads the rules. */
function recordedNames(): Set<string> {
  return new Set(ruleFile().groups.flatMap((g) => g.rules.flatMap((r) => (r.record ? [r.record] : []))));
}

/**
 * Every query of a Grafana dashboard: each `expr` anywhere in it (panels, rows' panels), and each
 * template variable's query; `label_values(SELECTOR, label)` counts as its selector.
 */
function dashboardExpressions(file: string): Expression[] {
  const dashboard = JSON.parse(readFileSync(file, 'utf8')) as { title: string; templating?: { list?: { name: string; query?: unknown }[] } };
  const found: Expression[] = [];
  const name = `${path.relative(root, file)}`;
  const walk = (node: unknown, where: string): void => {
    if (Array.isArray(node)) return node.forEach((child) => walk(child, where));
    if (node === null || typeof node !== 'object') return;
    const object = node as Record<string, unknown>;
    const here = typeof object.title === 'string' ? `${name} "${object.title}"` : where;
    if (typeof object.expr === 'string') found.push({ where: here, expr: object.expr });
    for (const [key, value] of Object.entries(object)) if (key !== 'templating') walk(value, here);
  };
  walk(dashboard, name);
  for (const variable of dashboard.templating?.list ?? []) {
    const query = typeof variable.query === 'string' ? variable.query : (variable.query as { query?: string } | undefined)?.query;
    if (!query) continue;
    const labelValues = /^\s*label_values\((.*),\s*[A-Za-z_]\w*\s*\)\s*$/s.exec(query);
    if (labelValues) found.push({ where: `${name} variable ${variable.name}`, expr: labelValues[1]! });
    else if (!/^\s*label_values\(\s*[A-Za-z_]\w*\s*\)\s*$/.test(query)) found.push({ where: `${name} variable ${variable.name}`, expr: query });
  }
  return found;
}

const KEYWORDS = new Set(['and', 'or', 'unless', 'by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'offset', 'bool', 'inf', 'nan', 'atan2']);

/** The expression with string literals emptied: label values never look like names. */
function withoutStrings(expr: string): string {
  return expr.replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""');
}

/**
 * The metric (or recorded series) names a PromQL expression reads: identifiers that are not
 * functions or aggregations (followed by `(`), keywords, label names (inside `{…}` and in
 * by/without/on/ignoring/group_left/group_right lists), durations, numbers or Grafana variables.
 */
function metricNames(expr: string): string[] {
  const bare = withoutStrings(expr)
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ')
    .replace(/\$\{?\w+\}?/g, ' ')
    .replace(/\b\d+(?:ms|s|m|h|d|w|y)\b/g, ' ')
    .replace(/(?<![\w:])(?:0x[\da-f]+|\d*\.?\d+(?:e[+-]?\d+)?)(?![\w:])/gi, ' ');
  const names = new Set<string>();
  for (const match of bare.matchAll(/[A-Za-z_:][\w:]*/g)) {
    const after = bare.slice(match.index + match[0].length);
    if (/^\s*\(/.test(after) || KEYWORDS.has(match[0].toLowerCase())) continue;
    names.add(match[0]);
  }
  return [...names];
}

/** Each selector with label matchers in an expression: its metric name and the labels it matches on. */
function selectorLabels(expr: string): { name: string; labels: string[] }[] {
  return [...withoutStrings(expr).matchAll(/([A-Za-z_:][\w:]*)\s*\{([^}]*)\}/g)].map((m) => ({
    name: m[1]!,
    labels: [...m[2]!.matchAll(/([A-Za-z_]\w*)\s*(?:=~|!~|!=|=)/g)].map((l) => l[1]!),
  }));
}

/** A /metrics scrape: the series names it exports (histograms' and summaries' too), and its samples. */
function parseScrape(text: string) {
  const exported = new Set<string>();
  const samples: { name: string; labels: Record<string, string>; value: number }[] = [];
  for (const line of text.split('\n')) {
    const type = /^# TYPE (\S+) (\S+)/.exec(line);
    if (type) {
      const [, name, kind] = type;
      exported.add(name!);
      if (kind === 'histogram') for (const suffix of ['_bucket', '_sum', '_count']) exported.add(name! + suffix);
      if (kind === 'summary') for (const suffix of ['_sum', '_count']) exported.add(name! + suffix);
      continue;
    }
    const sample = /^([A-Za-z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!sample || line.startsWith('#')) continue;
    const labels = Object.fromEntries([...(sample[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((l) => [l[1]!, l[2]!]));
    samples.push({ name: sample[1]!, labels, value: Number(sample[3]) });
  }
  const value = (name: string, labels: Record<string, string> = {}) =>
    samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;
  return { exported, samples, value };
}

/** The names among `expressions` that neither /metrics exports nor the rules record, with where each is used. */
function unknownNames(expressions: Expression[], exported: Set<string>, recorded: Set<string>): string[] {
  return expressions.flatMap(({ where, expr }) =>
    metricNames(expr)
      .filter((name) => !exported.has(name) && !recorded.has(name) && !MADE_BY_PROMETHEUS.has(name))
      .map((name) => `${where}: ${name}`),
  );
}

describe('the PromQL name extraction', () => {
  it('when an expression has functions, groupings, matchers, ranges and numbers, then only its metric names are taken', () => {
    expect(
      metricNames('histogram_quantile(0.99, sum by (le, route) (rate(foo_seconds_bucket{route=~"/api/.*",job="x"}[5m]))) > 1.5e9'),
    ).toEqual(['foo_seconds_bucket']);
    expect(
      metricNames(
        'sum without (state) (rate(a_total[5m] offset 1h)) / on (instance) group_left (node) b{le="0.5"} and bool c:recorded:rate5m unless d',
      ),
    ).toEqual(['a_total', 'b', 'c:recorded:rate5m', 'd']);
    expect(metricNames('sum(rate(x_total{instance=~"$instance"}[$__rate_interval])) / clamp_min(vector(1), 1) - time()')).toEqual(['x_total']);
    expect(metricNames('up{job="zinc"} == 0')).toEqual(['up']);
  });

  it('when a rule or a panel misspells a metric, then the check names it and where it is used', () => {
    const exported = new Set(['zinc_http_request_duration_seconds_count']);
    expect(
      unknownNames(
        [
          { where: 'a rule', expr: 'sum(rate(zinc_http_request_duration_seconds_count[5m]))' },
          { where: 'a panel', expr: 'sum by (route) (rate(zinc_http_request_duraton_seconds_count{route!="x"}[5m]))' },
          { where: 'a recorded one', expr: 'instance:zinc_http_5xx:ratio_rate5m > 0.02' },
        ],
        exported,
        new Set(['instance:zinc_http_5xx:ratio_rate5m']),
      ),
    ).toEqual(['a panel: zinc_http_request_duraton_seconds_count']);
  });
});

describe('ops/alerts.yml and the Grafana dashboard against /metrics (SQLite)', () => {
  const h = useHarness('sqlite');

  /** Requests that leave a labelled series behind: answers 200, 404, 429, imports of each outcome. */
  async function exercise() {
    h.writeCsv('good.csv', csv([['2024-01-02', orderId(), 'SKU-1', '10.00']]));
    h.writeCsv('bad.csv', csv([['2024-13-02', orderId(), 'SKU-1', '10.00']]));
    const run = await h.app.inject({ method: 'POST', url: '/api/import-sales/' });
    expect(run.statusCode, run.body).toBe(200);
    expect(run.json().summary).toMatchObject({ imported: 1, failed: 1 });
    expect((await h.app.inject({ url: '/api/metrics/revenue/?start=2024-01-01&end=2024-01-31' })).json().total_revenue).toBe('10.00');
    expect((await h.app.inject({ url: '/api/imports/999999' })).statusCode).toBe(404);
    expect((await h.app.inject({ url: '/health/ready' })).statusCode).toBe(200);
  }

  async function scrape() {
    const response = await h.app.inject({ url: '/metrics' });
    expect(response.statusCode).toBe(200);
    return parseScrape(response.body);
  }

  it('when the rules and the dashboard are read, then every metric they name is one /metrics exports', async () => {
    await exercise();
    const { exported } = await scrape();
    const rules = ruleExpressions();
    const panels = DASHBOARDS.flatMap(dashboardExpressions);
    // The extraction found what the files are about (an empty list would pass anything).
    const named = new Set([...rules, ...panels].flatMap((e) => metricNames(e.expr)));
    expect(rules.length).toBeGreaterThanOrEqual(15);
    expect(panels.length).toBeGreaterThanOrEqual(20);
    for (const name of ['up', 'zinc_ready', 'zinc_database_up', 'zinc_http_request_duration_seconds_bucket', 'zinc_import_oldest_running_seconds', 'zinc_imports_running']) {
      expect(named).toContain(name);
    }
    expect(unknownNames([...rules, ...panels], exported, recordedNames())).toEqual([]);
  });

  it('when a selector matches on labels, then the metric has those labels in a real scrape', async () => {
    await exercise();
    const { samples } = await scrape();
    const problems: string[] = [];
    for (const { where, expr } of [...ruleExpressions(), ...DASHBOARDS.flatMap(dashboardExpressions)]) {
      for (const { name, labels } of selectorLabels(expr)) {
        const seen = samples.filter((s) => s.name === name);
        // Recorded series, `up` and metrics with no sample here (replicas: none configured) are not checked.
        if (seen.length === 0) continue;
        const known = new Set([...TARGET_LABELS, ...seen.flatMap((s) => Object.keys(s.labels))]);
        for (const label of labels) if (!known.has(label)) problems.push(`${where}: ${name} has no label ${label}`);
      }
    }
    expect(problems).toEqual([]);
  });

  it('when requests and imports ran, then the series the alerts select on carry the label values they match', async () => {
    await exercise();
    const { value } = await scrape();
    // Zinc5xxRatio leaves out route=~"/health.*"; ZincSlowRoute leaves out route="/api/import-sales".
    expect(value('zinc_http_request_duration_seconds_count', { route: '/health/ready', status_code: '200' })).toBe(1);
    expect(value('zinc_http_request_duration_seconds_count', { route: '/api/import-sales', method: 'POST' })).toBe(1);
    expect(value('zinc_http_request_duration_seconds_count', { route: '/api/metrics/revenue', method: 'GET', status_code: '200' })).toBe(1);
    expect(value('zinc_imports_total', { outcome: 'failed' })).toBe(1);
    expect(value('zinc_imports_total', { outcome: 'success' })).toBe(1);
    expect(value('zinc_import_rows_total', { result: 'stored' })).toBe(1);
    expect(value('zinc_ready')).toBe(1);
    expect(value('zinc_database_up')).toBe(1);
    expect(value('zinc_imports_running')).toBe(0);
    expect(value('zinc_import_oldest_running_seconds')).toBe(0);
  });

  it('when a client is rate limited, then its 429s are counted with status_code="429" (ZincRateLimited)', async () => {
    const telemetry = new Telemetry();
    const app = await buildApp({ config: { ...h.config, rateLimitMax: 2 }, database: h.database, logger: false, telemetry });
    try {
      const statuses = [];
      for (let i = 0; i < 3; i += 1) statuses.push((await app.inject({ url: '/api/imports/' })).statusCode);
      expect(statuses).toEqual([200, 200, 429]);
      // GET /metrics counts against the limit too: read this app's registry directly.
      const { value } = parseScrape(await telemetry.registry.metrics());
      expect(value('zinc_http_request_duration_seconds_count', { route: '/api/imports', status_code: '429' })).toBe(1);
      expect(value('zinc_http_request_duration_seconds_count', { route: '/api/imports', status_code: '200' })).toBe(2);
    } finally {
      await app.close();
    }
  });

  it('when a shutdown begins, then zinc_ready is 0 and zinc_database_up keeps its last value', async () => {
    const lifecycle = new Lifecycle();
    const telemetry = new Telemetry();
    const app = await buildApp({ config: h.config, database: h.database, logger: false, telemetry, lifecycle });
    try {
      let scraped = parseScrape(await telemetry.registry.metrics());
      expect([scraped.value('zinc_ready'), scraped.value('zinc_database_up')]).toEqual([1, 1]);
      lifecycle.beginShutdown();
      scraped = parseScrape(await telemetry.registry.metrics());
      expect([scraped.value('zinc_ready'), scraped.value('zinc_database_up')]).toEqual([0, 1]);
      expect((await app.inject({ url: '/health/ready' })).json()).toMatchObject({ status: 'shutting_down', database: 'not checked' });
    } finally {
      await app.close();
    }
  });
});

describe('readiness gauges when the database is unreachable', () => {
  const closers: (() => Promise<void>)[] = [];
  afterAll(async () => {
    for (const close of closers.reverse()) await close();
  });

  it('when PostgreSQL is on a closed port, then zinc_ready and zinc_database_up are 0 and /health/ready agrees', async () => {
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as net.AddressInfo;
    await new Promise<void>((resolve) => server.close(() => resolve()));
    const config = testConfig(parseDatabaseUrl(`postgres://postgres@127.0.0.1:${port}/zinc`), process.cwd());
    const database = openDatabase(config.database);
    closers.push(() => database.close());
    const telemetry = new Telemetry();
    const app = await buildApp({ config, database, logger: false, telemetry });
    closers.push(() => app.close());
    const { value } = parseScrape(await telemetry.registry.metrics());
    expect([value('zinc_ready'), value('zinc_database_up')]).toEqual([0, 0]);
    const ready = await app.inject({ url: '/health/ready' });
    expect(ready.statusCode).toBe(503);
    expect(ready.json().database).toContain('ECONNREFUSED');
  });
});

describe('readiness gauges when the check hangs', () => {
  it('when the readiness check does not answer, then a scrape reports 0 within the bound and later scrapes join the same check', async () => {
    const telemetry = new Telemetry();
    let calls = 0;
    let answer: ((r: Readiness) => void) | undefined;
    telemetry.watchReadiness(() => {
      calls++;
      return new Promise<Readiness>((resolve) => (answer = resolve));
    }, 150);
    const started = performance.now();
    let scraped = parseScrape(await telemetry.registry.metrics());
    expect(performance.now() - started).toBeLessThan(5_000); // never the check's own (endless) time
    expect([scraped.value('zinc_ready'), scraped.value('zinc_database_up')]).toEqual([0, 0]);
    scraped = parseScrape(await telemetry.registry.metrics());
    expect(scraped.value('zinc_ready')).toBe(0);
    expect(calls).toBe(1);
    answer!({ status: 'ok', database: 'ok' });
    await new Promise((resolve) => setImmediate(resolve));
    scraped = parseScrape(await telemetry.registry.metrics());
    expect([scraped.value('zinc_ready'), scraped.value('zinc_database_up')]).toEqual([0, 0]);
    expect(calls).toBe(2);
  });
});

describe('running-import gauges (ZincImportRunningLong)', () => {
  it('when imports run, retry and end, then the count and the oldest one\'s age follow, first attempt kept', async () => {
    const telemetry = new Telemetry();
    const runs = new ImportRuns();
    telemetry.watchImports(runs);
    const read = async () => {
      const { value } = parseScrape(await telemetry.registry.metrics());
      return { running: value('zinc_imports_running')!, oldest: value('zinc_import_oldest_running_seconds')! };
    };
    expect(await read()).toEqual({ running: 0, oldest: 0 });

    runs.start(1, 100, performance.now() - 5000);
    runs.start(2, 100, performance.now() - 1000);
    let now = await read();
    expect(now.running).toBe(2);
    expect(now.oldest).toBeGreaterThanOrEqual(5);
    expect(now.oldest).toBeLessThan(6);

    // A write conflict makes import 1 start its transaction again: it has still run since the first start.
    runs.start(1, 100, performance.now());
    now = await read();
    expect(now.running).toBe(2);
    expect(now.oldest).toBeGreaterThanOrEqual(5);

    runs.end(1);
    now = await read();
    expect(now.running).toBe(1);
    expect(now.oldest).toBeGreaterThanOrEqual(1);
    expect(now.oldest).toBeLessThan(2);

    runs.end(2);
    expect(await read()).toEqual({ running: 0, oldest: 0 });
  });
});
