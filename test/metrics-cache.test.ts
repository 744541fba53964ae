import { describe, expect, it } from 'vitest';
import { buildApp } from '../src/app.js';
import { ConfigError, loadConfig } from '../src/config.js';
import { AnswerCache, DataVersion, ifNoneMatch } from '../src/metrics/answer-cache.js';
import { noteSalesCommitted } from '../src/write/sales-change.js';
import { openDatabase } from '../src/db/dialects/index.js';
import { rebuildRollups } from '../src/write/rollup-rebuild.js';
import { DIALECTS } from './support/databases.js';
import { csv, orderId, useHarness } from './support/harness.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('DataVersion', () => {
  it('when the known version is younger than maxStale, then it is not read again; invalidate forces a read', async () => {
    let clock = 0;
    let reads = 0;
    let value = 'v1';
    const version = new DataVersion(async () => (reads++, value), 1000, () => clock);
    expect(await version.current()).toBe('v1');
    value = 'v2';
    clock = 999;
    expect(await version.current()).toBe('v1');
    expect(reads).toBe(1);
    clock = 1000;
    expect(await version.current()).toBe('v2');
    expect(reads).toBe(2);
    value = 'v3';
    version.invalidate();
    expect(await version.current()).toBe('v3');
    expect(reads).toBe(3);
  });

  it('when a read began before an invalidation, then its value is used once but not kept', async () => {
    let release!: (v: string) => void;
    let reads = 0;
    const version = new DataVersion(
      () => (++reads === 1 ? new Promise<string>((r) => (release = r)) : Promise.resolve('new')),
      60_000,
      () => 0,
    );
    const early = version.current();
    version.invalidate(); // the change commits while the first read is on its way
    release('old');
    expect(await early).toBe('old');
    expect(await version.current()).toBe('new');
  });

  it('when maxStale is 0, then every call reads, and concurrent calls share one read', async () => {
    let reads = 0;
    const version = new DataVersion(async () => String(++reads), 0);
    const [a, b] = await Promise.all([version.current(), version.current()]);
    expect(a).toBe(b);
    expect(await version.current()).not.toBe(a);
  });
});

describe('AnswerCache', () => {
  it('when the version changes, then older answers are gone; concurrent misses compute once', async () => {
    const cache = new AnswerCache(true);
    let computed = 0;
    const compute = async () => `body${++computed}`;
    const [a, b] = await Promise.all([cache.get('1', 'k', compute), cache.get('1', 'k', compute)]);
    expect([String(a), String(b), computed]).toEqual(['body1', 'body1', 1]);
    expect(String(await cache.get('1', 'k', compute))).toBe('body1');
    expect(String(await cache.get('2', 'k', compute))).toBe('body2');
    expect(cache.size).toBe(1);
  });

  it('when it is full, then the least recently used answers leave first', async () => {
    const cache = new AnswerCache(true, 4000);
    const body = 'x'.repeat(850); // 916 bytes counted with the key: four fit in 4000
    for (const k of ['a', 'b', 'c', 'd']) await cache.get('1', k, async () => body);
    expect(String(await cache.get('1', 'a', async () => 'recomputed'))).toBe(body); // a is now the most recent
    await cache.get('1', 'e', async () => body);
    expect(cache.size).toBe(4);
    expect(String(await cache.get('1', 'a', async () => 'again'))).toBe(body);
    expect(String(await cache.get('1', 'b', async () => 'b again'))).toBe('b again');
  });

  it('when a computation fails, then nothing is kept', async () => {
    const cache = new AnswerCache(true);
    await expect(cache.get('1', 'k', async () => Promise.reject(new Error('db down')))).rejects.toThrow('db down');
    expect(String(await cache.get('1', 'k', async () => 'fine'))).toBe('fine');
  });

  it('when disabled, then every get computes', async () => {
    const cache = new AnswerCache(false);
    let n = 0;
    await cache.get('1', 'k', async () => String(++n));
    expect(String(await cache.get('1', 'k', async () => String(++n)))).toBe('2');
  });
});

describe('If-None-Match', () => {
  it('matches a listed tag, a weak form of it, or *', () => {
    expect(ifNoneMatch('"r1-5"', '"r1-5"')).toBe(true);
    expect(ifNoneMatch('"a", W/"r1-5"', '"r1-5"')).toBe(true);
    expect(ifNoneMatch('*', '"r1-5"')).toBe(true);
    expect(ifNoneMatch('"r1-4"', '"r1-5"')).toBe(false);
    expect(ifNoneMatch(undefined, '"r1-5"')).toBe(false);
  });
});

describe('CACHE_MAX_STALE_MS', () => {
  it('defaults to 1000, takes 0, and refuses anything but whole milliseconds in one line', () => {
    const salesDir = process.cwd();
    expect(loadConfig({ SALES_DIR: salesDir }).cacheMaxStaleMs).toBe(1000);
    expect(loadConfig({ SALES_DIR: salesDir, CACHE_MAX_STALE_MS: '0' }).cacheMaxStaleMs).toBe(0);
    expect(loadConfig({ SALES_DIR: salesDir, CACHE_MAX_STALE_MS: '250' }).cacheMaxStaleMs).toBe(250);
    for (const bad of ['-1', '1.5', 'soon', '']) {
      expect(() => loadConfig({ SALES_DIR: salesDir, CACHE_MAX_STALE_MS: bad })).toThrow(ConfigError);
      try {
        loadConfig({ SALES_DIR: salesDir, CACHE_MAX_STALE_MS: bad });
      } catch (error) {
        expect((error as Error).message).toMatch(/^CACHE_MAX_STALE_MS must be a whole number of milliseconds[^\n]*$/);
      }
    }
  });
});

describe.each(DIALECTS)('metrics caching on %s', (kind) => {
  const h = useHarness(kind);
  const URLS = [
    '/api/metrics/revenue?start=2024-01-01&end=2024-12-31',
    '/api/metrics/revenue/daily?start=2024-01-01&end=2024-01-31',
    '/api/metrics/revenue/series?start=2024-01-01&end=2024-12-31&granularity=month',
    '/api/metrics/revenue/by-product?start=2024-01-01&end=2024-12-31',
  ];

  async function importRows(rows: string[][], app = h.app) {
    h.writeCsv(`${orderId('file')}.csv`, csv(rows));
    const res = await app.inject({ method: 'POST', url: '/api/import-sales' });
    expect(res.json().summary.imported, res.body).toBe(1);
  }

  it('when an answer is asked again, then it carries the same ETag, Cache-Control, and If-None-Match gets 304', async () => {
    await importRows([['2024-01-05', orderId(), 'P', '1.00']]);
    for (const url of URLS) {
      const first = await h.app.inject({ url });
      expect(first.statusCode).toBe(200);
      expect(first.headers['content-type']).toBe('application/json; charset=utf-8');
      expect(first.headers.etag).toMatch(/^"r1-\d+"$/);
      expect(first.headers['cache-control']).toBe('public, max-age=1');
      const second = await h.app.inject({ url });
      expect(second.headers.etag).toBe(first.headers.etag);
      expect(second.body).toBe(first.body);
      const notModified = await h.app.inject({ url, headers: { 'if-none-match': first.headers.etag as string } });
      expect(notModified.statusCode).toBe(304);
      expect(notModified.body).toBe('');
      expect(notModified.headers.etag).toBe(first.headers.etag);
      const other = await h.app.inject({ url, headers: { 'if-none-match': '"r1-0"' } });
      expect(other.statusCode).toBe(200);
    }
  });

  it('when this instance imports, then its very next answers and ETags are new', async () => {
    await importRows([['2024-01-05', orderId(), 'P', '1.00']]);
    const before = await Promise.all(URLS.map((url) => h.app.inject({ url })));
    await importRows([['2024-01-06', orderId(), 'P', '2.00']]);
    const after = await Promise.all(URLS.map((url) => h.app.inject({ url })));
    for (const [i, res] of after.entries()) {
      expect(res.headers.etag).not.toBe(before[i]!.headers.etag);
      expect(res.body).not.toBe(before[i]!.body);
    }
    expect(after[0]!.json()).toMatchObject({ total_revenue: '3.00', order_count: 2 });
    const stale = await h.app.inject({ url: URLS[0]!, headers: { 'if-none-match': before[0]!.headers.etag as string } });
    expect(stale.statusCode).toBe(200);
  });

  it('when another instance imports, then this one sees it within CACHE_MAX_STALE_MS', async () => {
    const reader = await h.rebuild({ cacheMaxStaleMs: 300 });
    const writer = await buildApp({ config: { ...h.config, cacheMaxStaleMs: 300 }, database: h.database, logger: false });
    try {
      await importRows([['2024-01-05', orderId(), 'P', '1.00']], writer);
      await sleep(350);
      const url = URLS[0]!;
      expect((await reader.inject({ url })).json().total_revenue).toBe('1.00');
      await importRows([['2024-01-06', orderId(), 'P', '2.00']], writer);
      // The writer knows at once; the reader may keep its answer for up to 300 ms, and not longer.
      expect((await writer.inject({ url })).json().total_revenue).toBe('3.00');
      const started = Date.now();
      let seen = (await reader.inject({ url })).json().total_revenue;
      while (seen !== '3.00' && Date.now() - started < 2000) {
        await sleep(20);
        seen = (await reader.inject({ url })).json().total_revenue;
      }
      expect(seen).toBe('3.00');
      expect(Date.now() - started).toBeLessThan(300 + 200);
    } finally {
      await writer.close();
    }
  });

  it('when a change to sales commits outside a request and is noted, then this instance sees it at once', async () => {
    const app = await h.rebuild({ cacheMaxStaleMs: 60_000 });
    await importRows([['2024-01-05', orderId(), 'P', '1.00']], app);
    const url = URLS[0]!;
    expect((await app.inject({ url })).json().total_revenue).toBe('1.00');
    // As a repair by hand does it: sales change, the rollups are rebuilt (here by another
    // connection of the same database, as a tool would), then the note.
    await h.database.writer.deleteFrom('sales').execute();
    const tool = openDatabase(h.config.database);
    try {
      await rebuildRollups(tool);
    } finally {
      await tool.close();
    }
    expect((await app.inject({ url })).json().total_revenue).toBe('1.00'); // not noted: up to 60 s late
    noteSalesCommitted(h.database);
    expect((await app.inject({ url })).json().total_revenue).toBe('0.00');
  });

  it('when CACHE_MAX_STALE_MS is 0, then answers are always fresh but still carry an ETag', async () => {
    const reader = await h.rebuild({ cacheMaxStaleMs: 0 });
    const writer = await buildApp({ config: h.config, database: h.database, logger: false });
    try {
      await importRows([['2024-01-05', orderId(), 'P', '1.00']], writer);
      const first = await reader.inject({ url: URLS[0]! });
      expect(first.headers['cache-control']).toBe('public, no-cache');
      expect(first.headers.etag).toMatch(/^"r1-\d+"$/);
      await importRows([['2024-01-06', orderId(), 'P', '2.00']], writer);
      expect((await reader.inject({ url: URLS[0]! })).json().total_revenue).toBe('3.00');
    } finally {
      await writer.close();
    }
  });

  it('when an API token is set, then answers are private to the caller', async () => {
    const app = await h.rebuild({ apiToken: 'tok' });
    const res = await app.inject({ url: URLS[0]!, headers: { authorization: 'Bearer tok' } });
    expect(res.statusCode).toBe(200);
    expect(res.headers['cache-control']).toBe('private, max-age=1');
  });

  it('when a question is invalid, then the 400 carries no ETag', async () => {
    const res = await h.app.inject({ url: '/api/metrics/revenue/daily?start=2024-01-02&end=2024-01-01' });
    expect(res.statusCode).toBe(400);
    expect(res.headers.etag).toBeUndefined();
    await importRows([['1990-01-05', orderId(), 'P', '1.00'], ['2024-01-05', orderId(), 'P', '1.00']]);
    // Too long only once the absent bound is filled from the data.
    const late = await h.app.inject({ url: '/api/metrics/revenue/daily?end=2024-01-31' });
    expect(late.statusCode).toBe(400);
    expect(late.headers.etag).toBeUndefined();
    expect(late.headers['cache-control']).toBeUndefined();
  });
});
