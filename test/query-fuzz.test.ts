import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DIALECTS } from './support/databases.js';
import { csv, useHarness } from './support/harness.js';

/**
 * Every query parameter of every documented endpoint, fuzzed: random and binary strings, huge
 * numbers and strings, bad percent-encoding, repeated keys, bracket arrays, unknown keys. The
 * answer is always a 2xx or a 4xx JSON error, never a 5xx. Routes come from the OpenAPI document
 * (/docs/json), so a new route is fuzzed without touching this file.
 */

/** Runs per route; ZINC_FUZZ_RUNS=2000 for a deeper search on a developer machine. */
const FUZZ_RUNS = Number(process.env.ZINC_FUZZ_RUNS ?? 60);

interface Operation {
  method: string;
  path: string;
  query: string[];
  pathParams: string[];
}

async function operations(inject: (url: string) => Promise<{ json(): unknown }>): Promise<Operation[]> {
  const doc = (await inject('/docs/json')).json() as {
    paths: Record<string, Record<string, { parameters?: Array<{ in: string; name: string }> }>>;
  };
  return Object.entries(doc.paths).flatMap(([path, methods]) =>
    Object.entries(methods).map(([method, op]) => ({
      method: method.toUpperCase(),
      path,
      query: (op.parameters ?? []).filter((p) => p.in === 'query').map((p) => p.name),
      pathParams: (op.parameters ?? []).filter((p) => p.in === 'path').map((p) => p.name),
    })),
  );
}

/** Percent-encodes every byte of the UTF-8 form (lone surrogates become U+FFFD, as a browser sends them). */
const encodeBytes = (s: string) => [...Buffer.from(s, 'utf8')].map((b) => `%${b.toString(16).padStart(2, '0')}`).join('');

/** A raw, already-encoded query value. */
const rawValue = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 20 }).map(encodeBytes),
  fc.string({ unit: 'grapheme', maxLength: 20 }).map(encodeURIComponent),
  fc.constantFrom(
    '',
    '0',
    '-1',
    '1',
    '500',
    '501',
    '1.5',
    '1e3',
    '1e400',
    '-0',
    'NaN',
    'Infinity',
    '0x10',
    '%20%201',
    '9'.repeat(400),
    '-' + '9'.repeat(40),
    'true',
    'false',
    'null',
    'undefined',
    '[]',
    '{}',
    '2024-01-01',
    '2024-02-29',
    '2023-02-29',
    '2024-13-01',
    '0000-01-01',
    '9999-12-31',
    '99999-01-01',
    '-2024-01-01',
    '2024-01-01T00:00:00Z',
    '2024-1-1',
    'day',
    'week',
    'month',
    'quarter',
    'year',
    'previous_period',
    'revenue',
    'orders',
    'fail',
    'skip',
    'SKU-1',
    '%',
    '%zz',
    '%C3',
    '%00',
    '%ED%A0%80',
    '%FF%FE',
    '%E2%80%AE',
    "'%20OR%201=1--",
    '%3Cscript%3E',
    '..%2F..%2Fetc%2Fpasswd',
  ),
  fc.nat({ max: 100_000 }).map((n) => 'x'.repeat(n)),
);

const keyFor = (names: string[]) =>
  fc.oneof(
    { weight: 6, arbitrary: fc.constantFrom(...(names.length > 0 ? names : ['q'])) },
    { weight: 1, arbitrary: fc.string({ unit: 'grapheme-ascii', maxLength: 8 }).map(encodeURIComponent) },
    { weight: 1, arbitrary: fc.constantFrom('__proto__', 'constructor', 'toString', 'hasOwnProperty', '%5B%5D') },
  );

/** One query string: pairs with plain, repeated, array-bracket and index-bracket keys, or raw garbage. */
const queryFor = (names: string[]) =>
  fc.oneof(
    {
      weight: 8,
      arbitrary: fc
        .array(
          fc.record({
            key: keyFor(names),
            value: rawValue,
            form: fc.constantFrom('plain', 'plain', 'plain', 'brackets', 'index', 'bare'),
            repeat: fc.nat({ max: 3 }),
          }),
          { maxLength: 6 },
        )
        .map((pairs) =>
          pairs
            .flatMap(({ key, value, form, repeat }) => {
              const k = form === 'brackets' ? `${key}[]` : form === 'index' ? `${key}[0]` : key;
              const one = form === 'bare' ? k : `${k}=${value}`;
              return Array.from({ length: repeat + 1 }, () => one);
            })
            .join('&'),
        ),
    },
    { weight: 1, arbitrary: fc.string({ unit: 'binary-ascii', maxLength: 60 }).map((s) => s.replace(/[#\s]/g, '')) },
    { weight: 1, arbitrary: fc.constant(`${names[0] ?? 'q'}=${'1,'.repeat(20_000)}`) },
  );

const pathValue = fc.oneof(
  fc.constantFrom('1', '0', '-1', '2147483648', '9'.repeat(40), '1.5', 'abc', '%00', '%zz', encodeURIComponent('1 OR 1=1'), '1e3', 'null'),
  fc.string({ unit: 'grapheme', minLength: 1, maxLength: 12 }).map(encodeURIComponent),
);

describe.each(DIALECTS)('query parameter fuzzing (%s)', (kind) => {
  const h = useHarness(kind);

  it('every documented endpoint answers 2xx or a 4xx JSON error to any query, never a 5xx', async () => {
    // Some data, so that valid questions reach real queries.
    h.writeCsv('seed.csv', csv([['2024-01-02', 'O-1', 'SKU-1', '10.00'], ['2024-03-04', 'O-2', 'SKU-2', '-2.50'], ['2023-12-31', 'O-3', 'SKU-1', '7.25']]));
    expect((await h.app.inject({ method: 'POST', url: '/api/import-sales' })).statusCode).toBe(200);

    const ops = await operations((url) => h.app.inject({ url }));
    expect(ops.some((o) => o.path === '/api/metrics/revenue')).toBe(true);
    expect(ops.length).toBeGreaterThanOrEqual(12);
    const seen = new Map<string, Set<number>>();

    for (const op of ops) {
      await fc.assert(
        fc.asyncProperty(queryFor(op.query), fc.array(pathValue, { minLength: op.pathParams.length, maxLength: op.pathParams.length }), async (query, params) => {
          let path = op.path;
          op.pathParams.forEach((name, i) => (path = path.replace(`{${name}}`, params[i]!)));
          const url = `${path}${query === '' ? '' : `?${query}`}`;
          const res = await h.app.inject({ method: op.method as 'GET', url, headers: op.method === 'POST' ? { 'content-type': 'text/csv' } : {} });
          const where = `${op.method} ${url.slice(0, 300)} → ${res.statusCode} ${res.body.slice(0, 300)}`;
          expect(res.statusCode, where).toBeLessThan(500);
          if (res.statusCode >= 400) {
            expect(res.headers['content-type'], where).toMatch(/^application\/json/);
            expect(res.json(), where).toEqual(expect.objectContaining({ error: expect.any(String), message: expect.any(String) }));
          }
          const key = `${op.method} ${op.path}`;
          if (!seen.has(key)) seen.set(key, new Set());
          seen.get(key)!.add(res.statusCode);
        }),
        { numRuns: FUZZ_RUNS },
      );
    }
    // The fuzzing did reach past validation on the routes that read.
    for (const route of ['GET /api/metrics/revenue', 'GET /api/imports', 'GET /api/metrics/revenue/series']) {
      expect([...(seen.get(route) ?? [])], route).toContain(200);
    }
  }, 120_000 + FUZZ_RUNS * 1000);
});
