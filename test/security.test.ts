import { execFile } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { Writable } from 'node:stream';
import { promisify } from 'node:util';
import type { FastifyInstance } from 'fastify';
import { describe, expect, it } from 'vitest';
import { buildApp } from '../src/app.js';
import { assertServable, ConfigError, loadConfig, type Config } from '../src/config.js';
import { securityHeaders } from '../src/http/security.js';
import { DIALECTS, REDIS_URL } from './support/databases.js';
import { csv, orderId, useHarness } from './support/harness.js';

const WRITE = 'w-7f3a9c1e5b2d4a6f8e0c';
const READ = 'r-1b2c3d4e5f6a7b8c9d0e';
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

/** What the read-only token may call, stated here apart from the routes' own `config.access`: reading metrics and import records. */
function readOnlyRoute(method: string, route: string): boolean {
  if (method !== 'GET' && method !== 'HEAD') return false;
  return route.startsWith('/api/metrics/') || route === '/api/imports' || route === '/api/imports/:id';
}

/** Every route of the OpenAPI document, as [method, path] with `{id}` filled in. */
async function documentedRoutes(app: FastifyInstance): Promise<Array<[string, string]>> {
  const doc = (await app.inject({ url: '/docs/json' })).json() as { paths: Record<string, Record<string, unknown>> };
  return Object.entries(doc.paths).flatMap(([p, methods]) =>
    Object.keys(methods).map((m) => [m.toUpperCase(), p.replace(/\{[^}]+\}/g, '1')] as [string, string]),
  );
}

describe.each(DIALECTS)('access control (%s)', (kind) => {
  const h = useHarness(kind, { apiToken: WRITE, apiReadToken: READ });

  it('when the read-only token is used, then metrics and import records read, and every route that changes data is 403', async () => {
    const routes = await documentedRoutes(h.app);
    const api = routes.filter(([, p]) => p.startsWith('/api/'));
    expect(api.length).toBeGreaterThanOrEqual(8);
    for (const [method, url] of api) {
      const template = url.replace(/\/1$/, '/:id');
      const res = await h.app.inject({ method: method as 'GET', url, headers: bearer(READ) });
      if (readOnlyRoute(method, template)) {
        expect([200, 404], `${method} ${url}: ${res.body}`).toContain(res.statusCode);
      } else {
        expect(res.statusCode, `${method} ${url}`).toBe(403);
        expect(res.json()).toMatchObject({ error: 'forbidden', message: expect.stringContaining('API_READ_TOKEN') });
      }
    }
    // Reading is exactly: GET of /api/metrics/* and of import records.
    const readable = api.filter(([m, p]) => readOnlyRoute(m, p.replace(/\/1$/, '/:id'))).map(([m, p]) => `${m} ${p}`);
    expect(readable).toContain('GET /api/imports');
    expect(readable).toContain('GET /api/imports/1');
    expect(readable).toContain('GET /api/metrics/revenue');
    expect(readable.every((r) => r.startsWith('GET '))).toBe(true);
  });

  it('when the read-only token tries to import, upload, undo or run an import by GET or HEAD, then nothing changes', async () => {
    h.writeCsv('a.csv', csv([['2024-01-01', orderId(), 'P', '1.00']]));
    const attempts = [
      { method: 'GET', url: '/api/import-sales' },
      { method: 'HEAD', url: '/api/import-sales' },
      { method: 'POST', url: '/api/import-sales?async=true' },
      { method: 'POST', url: '/api/imports?filename=x.csv', payload: csv([['2024-01-01', orderId(), 'P', '2.00']]), headers: { 'content-type': 'text/csv' } },
    ] as const;
    for (const a of attempts) {
      const res = await h.app.inject({ ...a, headers: { ...('headers' in a ? a.headers : {}), ...bearer(READ) } });
      expect(res.statusCode, `${a.method} ${a.url}`).toBe(403);
    }
    expect(await h.database.db.selectFrom('imported_files').selectAll().execute()).toEqual([]);

    const imported = await h.app.inject({ method: 'POST', url: '/api/import-sales', headers: bearer(WRITE) });
    expect(imported.json()).toMatchObject({ summary: { imported: 1 } });
    const id = (imported.json() as { files: Array<{ id: number }> }).files[0]!.id;
    expect((await h.app.inject({ method: 'DELETE', url: `/api/imports/${id}`, headers: bearer(READ) })).statusCode).toBe(403);
    expect((await h.app.inject({ url: `/api/imports/${id}`, headers: bearer(READ) })).json()).toMatchObject({ status: 'success' });
    expect((await h.app.inject({ url: '/api/metrics/revenue', headers: bearer(READ) })).json()).toMatchObject({ total_revenue: '1.00' });
    expect((await h.app.inject({ method: 'DELETE', url: `/api/imports/${id}`, headers: bearer(WRITE) })).json()).toMatchObject({ status: 'reverted' });
  });

  it('when no token, a wrong one, or another scheme is sent, then every /api route is 401 and the open routes stay open', async () => {
    for (const headers of [{}, bearer('nope'), bearer(`${READ}x`), { authorization: `Basic ${WRITE}` }, { authorization: WRITE }]) {
      for (const url of ['/api/metrics/revenue', '/api/imports', '/api/import-sales', '/api/nope', '/%61pi/imports']) {
        const res = await h.app.inject({ url, headers });
        // `/%61pi/imports` is routed as /api/imports, so it is guarded like it.
        expect(res.statusCode, `${url} ${JSON.stringify(headers)}`).toBe(401);
        expect(res.headers['www-authenticate']).toBe('Bearer realm="zinc"');
        expect(res.json()).toMatchObject({ error: 'unauthorized' });
      }
    }
    expect((await h.app.inject({ url: '/health' })).statusCode).toBe(200);
    expect((await h.app.inject({ url: '/docs/json' })).statusCode).toBe(200);
    // Any valid token reaches an unknown /api path's 404.
    expect((await h.app.inject({ url: '/api/nope', headers: bearer(READ) })).statusCode).toBe(404);
  });
});

describe('tokens in logs', () => {
  const h = useHarness('sqlite', { apiToken: WRITE, apiReadToken: READ, metricsToken: 'm-secret-metrics' });

  it('when requests carry tokens (right, wrong, read-only where forbidden), then no log line contains one', async () => {
    const lines: string[] = [];
    const stream = new Writable({
      write(chunk: Buffer, _encoding, done) {
        lines.push(chunk.toString());
        done();
      },
    });
    const config: Config = { ...h.config, logLevel: 'trace' };
    const app = await buildApp({ config, database: h.database, logger: { stream } });
    try {
      for (const token of [WRITE, READ, 'm-secret-metrics', `${WRITE}-wrong`]) {
        for (const [method, url] of [['GET', '/api/metrics/revenue'], ['POST', '/api/import-sales'], ['GET', '/metrics'], ['GET', '/api/imports/999']] as const) {
          await app.inject({ method, url, headers: { ...bearer(token), 'x-api-key': token } });
        }
      }
      app.log.info({ config, headers: { authorization: `Bearer ${WRITE}` } }, 'a careless line');
    } finally {
      await app.close();
    }
    const all = lines.join('');
    expect(lines.filter((l) => l.includes('"msg":"request"')).length).toBeGreaterThanOrEqual(16);
    for (const secret of [WRITE, READ, 'm-secret-metrics']) expect(all).not.toContain(secret);
    expect(all).toContain('[redacted]');
  });
});

describe('start-up without a token', () => {
  const base = { SALES_DIR: process.cwd() };

  it('when NODE_ENV=production and API_TOKEN is unset, then serving is refused with one line naming API_TOKEN', () => {
    const config = loadConfig({ ...base, NODE_ENV: 'production' });
    expect(() => assertServable(config)).toThrow(ConfigError);
    expect(() => assertServable(config)).toThrow(/^API_TOKEN must be set when NODE_ENV=production \(or set ALLOW_ANONYMOUS=true/);
    expect(() => assertServable(loadConfig({ ...base, NODE_ENV: 'production', ALLOW_ANONYMOUS: 'true' }))).not.toThrow();
    expect(() => assertServable(loadConfig({ ...base, NODE_ENV: 'production', API_TOKEN: 't' }))).not.toThrow();
    expect(() => assertServable(loadConfig({ ...base }))).not.toThrow();
  });

  it('when the CLI serves in production without a token, then it exits 1 with the zinc: line', async () => {
    const cli = path.resolve('dist/src/cli.js');
    const result = await promisify(execFile)(process.execPath, [cli, 'serve'], {
      env: { PATH: process.env.PATH, NODE_ENV: 'production', DATABASE_URL: 'sqlite::memory:', PORT: '0', SALES_DIR: process.cwd() },
      timeout: 20_000,
    }).then(
      () => ({ code: 0, stderr: '' }),
      (error: { code: number; stderr: string }) => error,
    );
    expect(result.code).toBe(1);
    expect(result.stderr.trim()).toMatch(/^zinc: API_TOKEN must be set when NODE_ENV=production/);
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
  });

  it.each([
    [{ API_READ_TOKEN: 'r' }, /^API_READ_TOKEN needs API_TOKEN/],
    [{ API_TOKEN: 'same', API_READ_TOKEN: 'same' }, /^API_READ_TOKEN must differ from API_TOKEN$/],
    [{ ALLOW_ANONYMOUS: 'yes' }, /^ALLOW_ANONYMOUS must be true or false \(got "yes"\)$/],
    [{ RATE_LIMIT_MAX: '-1' }, /^RATE_LIMIT_MAX must be a whole number/],
    [{ RATE_LIMIT_WINDOW_MS: '0' }, /^RATE_LIMIT_WINDOW_MS must be a whole number of milliseconds above 0/],
    [{ REQUEST_TIMEOUT_MS: '1e3' }, /^REQUEST_TIMEOUT_MS must be a whole number/],
    [{ CORS_ORIGINS: 'https://ok.example.com,*' }, /^CORS_ORIGINS must list origins like https:\/\/app\.example\.com/],
    [{ CORS_ORIGINS: 'https://a.example.com/path' }, /^CORS_ORIGINS must list origins/],
    [{ TRUST_PROXY: '10.0.0.0/33' }, /^TRUST_PROXY must be false, true, or the proxies' addresses/],
  ])('when %o, then loading the configuration fails with one line naming the variable', (env, message) => {
    expect(() => loadConfig({ ...base, ...env })).toThrow(message);
  });

  it('reads the security settings', () => {
    const config = loadConfig({
      ...base,
      API_TOKEN: 'w',
      API_READ_TOKEN: 'r',
      RATE_LIMIT_MAX: '0',
      RATE_LIMIT_WINDOW_MS: '1000',
      REQUEST_TIMEOUT_MS: '0',
      CORS_ORIGINS: ' https://a.example.com , http://localhost:5173 ',
      TRUST_PROXY: '10.0.0.0/8, loopback',
    });
    expect(config).toMatchObject({
      apiReadToken: 'r',
      rateLimitMax: 0,
      rateLimitWindowMs: 1000,
      requestTimeoutMs: 0,
      corsOrigins: ['https://a.example.com', 'http://localhost:5173'],
      trustProxy: ['10.0.0.0/8', 'loopback'],
    });
    expect(loadConfig(base)).toMatchObject({ rateLimitMax: 1200, rateLimitWindowMs: 60_000, requestTimeoutMs: 30_000, corsOrigins: [], trustProxy: false, allowAnonymous: false });
  });
});

describe('abuse limits', () => {
  const h = useHarness('sqlite');

  it('when a client makes more than RATE_LIMIT_MAX requests in the window, then it gets 429 with Retry-After and a JSON error, others do not', async () => {
    const app = await h.rebuild({ rateLimitMax: 3, rateLimitWindowMs: 60_000 });
    const from = (remoteAddress: string, url = '/api/metrics/revenue') => app.inject({ url, remoteAddress });
    for (let i = 0; i < 3; i++) expect((await from('10.0.0.1')).statusCode).toBe(200);
    const limited = await from('10.0.0.1');
    expect(limited.statusCode).toBe(429);
    expect(Number(limited.headers['retry-after'])).toBeGreaterThan(0);
    expect(limited.headers['retry-after']).toMatch(/^\d+$/);
    expect(limited.json()).toEqual({ error: 'rate_limited', message: expect.stringMatching(/^more than 3 requests in 60 s from this client \(RATE_LIMIT_MAX\); retry in/) });
    // Unknown paths count too; health probes never.
    expect((await from('10.0.0.1', '/nope')).statusCode).toBe(429);
    for (let i = 0; i < 10; i++) expect((await from('10.0.0.1', '/health/live')).statusCode).toBe(200);
    expect((await from('10.0.0.2')).statusCode).toBe(200);
  });

  it.runIf(REDIS_URL)('when instances share RATE_LIMIT_REDIS_URL, then a client is counted across them; without it, by each alone', async () => {
    const client = `10.${Math.floor(Math.random() * 250)}.${Math.floor(Math.random() * 250)}.7`;
    const shared = { rateLimitMax: 3, rateLimitWindowMs: 60_000, rateLimitRedisUrl: REDIS_URL };
    const a = await h.rebuild(shared);
    const b = await h.rebuild(shared);
    const on = (app: typeof a) => app.inject({ url: '/api/metrics/revenue', remoteAddress: client });
    expect((await on(a)).statusCode).toBe(200);
    expect((await on(b)).statusCode).toBe(200);
    expect((await on(a)).statusCode).toBe(200);
    const fourth = await on(b);
    expect(fourth.statusCode, fourth.body).toBe(429);
    expect(fourth.json()).toMatchObject({ error: 'rate_limited' });
    // The default: each instance counts alone, so two instances allow twice the limit.
    const alone = { rateLimitMax: 3, rateLimitWindowMs: 60_000, rateLimitRedisUrl: undefined };
    const c = await h.rebuild(alone);
    const d = await h.rebuild(alone);
    const statuses = [];
    for (const app of [c, c, c, d, d, d]) statuses.push((await app.inject({ url: '/api/metrics/revenue', remoteAddress: client })).statusCode);
    expect(statuses).toEqual([200, 200, 200, 200, 200, 200]);
  });

  it('when RATE_LIMIT_REDIS_URL names Redis where none answers, then requests are answered, not counted', async () => {
    const app = await h.rebuild({ rateLimitMax: 1, rateLimitWindowMs: 60_000, rateLimitRedisUrl: 'redis://127.0.0.1:1' });
    for (let i = 0; i < 3; i++) expect((await app.inject({ url: '/api/metrics/revenue', remoteAddress: '10.0.0.9' })).statusCode).toBe(200);
  });

  it('when RATE_LIMIT_MAX is 0, then there is no limit', async () => {
    const app = await h.rebuild({ rateLimitMax: 0 });
    for (let i = 0; i < 50; i++) expect((await app.inject({ url: '/health/live', remoteAddress: '10.0.0.3' })).statusCode).toBe(200);
    const res = await app.inject({ url: '/api/metrics/revenue', remoteAddress: '10.0.0.3' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['x-ratelimit-limit']).toBeUndefined();
  });

  it('sends Strict-Transport-Security only on answers that came over HTTPS, as a trusted proxy says', async () => {
    const behindProxy = await h.rebuild({ trustProxy: ['127.0.0.1'] });
    for (const url of ['/api/metrics/revenue', '/docs', '/nope']) {
      const viaTls = await behindProxy.inject({ url, headers: { 'x-forwarded-proto': 'https' }, remoteAddress: '127.0.0.1' });
      expect(viaTls.headers['strict-transport-security'], url).toBe('max-age=31536000');
      const plain = await behindProxy.inject({ url, remoteAddress: '127.0.0.1' });
      expect(plain.headers['strict-transport-security'], url).toBeUndefined();
      // An untrusted client cannot ask for it.
      const spoofed = await behindProxy.inject({ url, headers: { 'x-forwarded-proto': 'https' }, remoteAddress: '10.9.9.9' });
      expect(spoofed.headers['strict-transport-security'], url).toBeUndefined();
    }
  });

  it('refuses a CSP directive computed per request, since the headers are worked out once', () => {
    const nonce = () => "'nonce-x'";
    expect(() => securityHeaders({ contentSecurityPolicy: { directives: { 'script-src': ["'self'", nonce] } } })).toThrow(/per request/);
    expect(securityHeaders({ contentSecurityPolicy: { directives: { 'script-src': ["'self'"] } } })['content-security-policy']).toContain("script-src 'self'");
  });

  it('sends security headers on every answer, with a CSP that lets the /docs page load its own scripts and styles', async () => {
    for (const url of ['/api/metrics/revenue', '/api/nope', '/nope', '/health', '/docs', '/docs/json', '/']) {
      const res = await h.app.inject({ url });
      const page = url === '/' || url.startsWith('/docs');
      expect(res.headers['x-content-type-options'], url).toBe('nosniff');
      expect(res.headers['referrer-policy'], url).toBe('no-referrer');
      // Plain HTTP: no Strict-Transport-Security (RFC 6797 §7.2).
      expect(res.headers['strict-transport-security'], url).toBeUndefined();
      expect(res.headers['cross-origin-resource-policy'], url).toBe('same-origin');
      expect(res.headers['x-powered-by'], url).toBeUndefined();
      // JSON answers load nothing and are never framed; pages may frame themselves.
      expect(res.headers['x-frame-options'], url).toBe(page ? 'SAMEORIGIN' : 'DENY');
      if (!page) expect(res.headers['content-security-policy'], url).toBe("default-src 'none';frame-ancestors 'none'");
      // Headers that only mean something to documents stay off JSON answers.
      expect(res.headers['cross-origin-opener-policy'] !== undefined, url).toBe(page);
    }
    const page = await h.app.inject({ url: '/docs/' });
    expect(page.statusCode).toBe(200);
    const csp = String(page.headers['content-security-policy']);
    expect(csp).toContain("default-src 'self'");
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("img-src 'self' data:");
    expect(csp).not.toContain('upgrade-insecure-requests');
    // Everything the page loads is its own (relative URLs), and each of them is served.
    const assets = [...page.body.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]!);
    expect(assets.length).toBeGreaterThanOrEqual(4);
    for (const asset of assets) {
      expect(asset, asset).not.toMatch(/^(https?:)?\/\//);
      expect((await h.app.inject({ url: new URL(asset, 'http://x/docs/').pathname })).statusCode, asset).toBe(200);
    }
    expect(page.body).not.toMatch(/<script>(?!\s*<\/script>)/); // no inline script for the CSP to block
  });

  it('when CORS_ORIGINS is unset, then no CORS headers are sent and a preflight finds nothing', async () => {
    const res = await h.app.inject({ url: '/api/metrics/revenue', headers: { origin: 'https://evil.example.com' } });
    expect(res.statusCode).toBe(200);
    expect(res.headers['access-control-allow-origin']).toBeUndefined();
    const preflight = await h.app.inject({
      method: 'OPTIONS',
      url: '/api/metrics/revenue',
      headers: { origin: 'https://evil.example.com', 'access-control-request-method': 'GET' },
    });
    expect(preflight.statusCode).toBe(404);
    expect(preflight.headers['access-control-allow-origin']).toBeUndefined();
  });

  it('when CORS_ORIGINS lists origins, then exactly those get CORS headers, on 401s too', async () => {
    const app = await h.rebuild({ corsOrigins: ['https://dash.example.com'], apiToken: WRITE });
    const allowed = await app.inject({ url: '/api/metrics/revenue', headers: { origin: 'https://dash.example.com', ...bearer(WRITE) } });
    expect(allowed.statusCode).toBe(200);
    expect(allowed.headers['access-control-allow-origin']).toBe('https://dash.example.com');
    expect(String(allowed.headers['access-control-expose-headers'])).toContain('ETag');
    const denied = await app.inject({ url: '/api/metrics/revenue', headers: { origin: 'https://evil.example.com', ...bearer(WRITE) } });
    expect(denied.headers['access-control-allow-origin']).toBeUndefined();
    const unauthorized = await app.inject({ url: '/api/metrics/revenue', headers: { origin: 'https://dash.example.com' } });
    expect(unauthorized.statusCode).toBe(401);
    expect(unauthorized.headers['access-control-allow-origin']).toBe('https://dash.example.com');
    const preflight = await app.inject({
      method: 'OPTIONS',
      url: '/api/imports',
      headers: { origin: 'https://dash.example.com', 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization,content-type' },
    });
    expect(preflight.statusCode).toBe(204);
    expect(preflight.headers['access-control-allow-origin']).toBe('https://dash.example.com');
    expect(String(preflight.headers['access-control-allow-headers']).toLowerCase()).toContain('authorization');
  });

  it('when a number parameter is infinite or beyond what a database can bind, then it is a 400 naming it', async () => {
    const cases: Array<[string, string]> = [
      ['/api/imports?limit=1e400', 'limit'],
      ['/api/imports?offset=1e400', 'offset'],
      ['/api/imports?offset=1e20', 'offset'],
      ['/api/imports?offset=-Infinity', 'offset'],
      ['/api/imports/1e400', 'id'],
      ['/api/imports/99999999999999999999', 'id'],
      ['/api/metrics/revenue/by-product?limit=1e400', 'limit'],
    ];
    for (const [url, field] of cases) {
      const res = await h.app.inject({ url });
      expect(res.statusCode, `${url}: ${res.body}`).toBe(400);
      expect(res.json()).toMatchObject({ error: 'invalid_parameter', field });
    }
    expect((await h.app.inject({ url: '/api/imports?offset=9007199254740991' })).statusCode).toBe(200);
  });

  it('when a JSON body is larger than the body limit, then it is 413 in the JSON error format', async () => {
    const res = await h.app.inject({
      method: 'POST',
      url: '/api/import-sales',
      payload: JSON.stringify({ pad: 'x'.repeat(100_000) }),
      headers: { 'content-type': 'application/json' },
    });
    expect(res.statusCode).toBe(413);
    expect(res.json()).toEqual({ error: 'payload_too_large', message: 'the request body is larger than 65536 bytes' });
  });
});

/** Sends raw bytes to a listening app and resolves with everything it answered once the connection closes. */
function rawExchange(port: number, writes: Array<{ afterMs: number; data: string }>, maxMs = 10_000) {
  return new Promise<{ text: string; ms: number }>((resolve) => {
    const started = Date.now();
    const socket = net.connect(port, '127.0.0.1');
    let text = '';
    const timers = writes.map((w) => setTimeout(() => !socket.destroyed && socket.write(w.data), w.afterMs));
    const guard = setTimeout(() => socket.destroy(), maxMs);
    socket.on('data', (d) => (text += d.toString()));
    socket.on('error', () => {});
    socket.on('close', () => {
      for (const t of timers) clearTimeout(t);
      clearTimeout(guard);
      resolve({ text, ms: Date.now() - started });
    });
  });
}

describe('limits on a real socket', () => {
  const h = useHarness('sqlite');

  async function listening(overrides: Partial<Config>): Promise<{ app: FastifyInstance; port: number }> {
    const app = await h.rebuild(overrides);
    await app.listen({ host: '127.0.0.1', port: 0 });
    return { app, port: (app.server.address() as net.AddressInfo).port };
  }

  it('when the request headers are larger than the limit, then the answer is 431 in the JSON error format', async () => {
    const { port } = await listening({});
    const { text } = await rawExchange(port, [{ afterMs: 0, data: `GET /health HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n` }]);
    expect(text).toMatch(/^HTTP\/1\.1 431 /);
    expect(JSON.parse(text.slice(text.indexOf('\r\n\r\n') + 4))).toEqual({ error: 'headers_too_large', message: 'the request headers are larger than 16384 bytes' });
  });

  it('when an answer takes longer than REQUEST_TIMEOUT_MS, then it is a 503 JSON timeout, and a silent connection is closed', async () => {
    const app = await h.rebuild({ requestTimeoutMs: 300 });
    app.get('/api/metrics/slow-for-test', async () => {
      await new Promise((r) => setTimeout(r, 1500));
      return { late: true };
    });
    await app.listen({ host: '127.0.0.1', port: 0 });
    const port = (app.server.address() as net.AddressInfo).port;
    const res = await fetch(`http://127.0.0.1:${port}/api/metrics/slow-for-test`);
    expect(res.status).toBe(503);
    expect(await res.json()).toEqual({ error: 'timeout', message: expect.stringContaining('REQUEST_TIMEOUT_MS') });
    expect((await fetch(`http://127.0.0.1:${port}/api/metrics/revenue`)).status).toBe(200);

    const silent = await rawExchange(port, []);
    expect(silent.text).toBe('');
    expect(silent.ms).toBeGreaterThanOrEqual(550);
    expect(silent.ms).toBeLessThan(3000);
  });

  it('when an upload keeps streaming for longer than REQUEST_TIMEOUT_MS, then it is not cut; when it stalls, it is', async () => {
    const { port } = await listening({ requestTimeoutMs: 300 });
    const rows = Array.from({ length: 12 }, (_, i) => `2024-02-0${1 + (i % 9)},SLOW-${i},P,1.00\n`);
    const body = `date,order_id,product_id,amount_sgd\n${rows.join('')}`;
    const head = `POST /api/imports?filename=slow.csv HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n`;
    // 13 pieces 200 ms apart: 2.4 s in all, never 600 ms (the idle limit) without a byte.
    const pieces = [head + body.slice(0, 36), ...rows];
    const slow = await rawExchange(port, pieces.map((data, i) => ({ afterMs: i * 200, data })));
    expect(slow.ms).toBeGreaterThan(2000);
    expect(slow.text).toMatch(/^HTTP\/1\.1 200 /);
    expect(slow.text).toContain('"status":"success"');
    expect(slow.text).toContain('"num_rows":12');

    const stalled = await rawExchange(port, [
      { afterMs: 0, data: head.replace('slow.csv', 'stalled.csv') + body.slice(0, 60) },
      { afterMs: 2000, data: body.slice(60) },
    ]);
    expect(stalled.text).toBe('');
    expect(stalled.ms).toBeLessThan(2000);
    const names = (await h.database.db.selectFrom('imported_files').select('filename').execute()).map((r) => r.filename);
    expect(names).toEqual(['slow.csv']);
  });

  it('when an import runs longer than REQUEST_TIMEOUT_MS, then it still answers with its result', async () => {
    const rows = Array.from({ length: 200_000 }, (_, i) => ['2024-03-01', `LONG-${i}`, `P-${i % 50}`, '1.25']);
    h.writeCsv('long.csv', csv(rows));
    const { port } = await listening({ requestTimeoutMs: 100 });
    const res = await fetch(`http://127.0.0.1:${port}/api/import-sales`, { method: 'POST' });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { files: Array<{ status: string; num_rows: number; duration_ms: number }> };
    expect(body.files[0]).toMatchObject({ status: 'success', num_rows: rows.length });
    // It did outlast both the answer timeout and the idle limit, so the exemption was exercised.
    expect(body.files[0]!.duration_ms).toBeGreaterThan(200);
  });
});
