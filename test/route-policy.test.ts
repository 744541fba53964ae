import type { FastifyInstance, FastifyRequest } from 'fastify';
import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import { declareRoutes } from '../src/http/route-policy.js';
import { useHarness } from './support/harness.js';

const WRITE = 'w-5e1d7c3b9a2f4e6d8c0b';
const READ = 'r-0a9b8c7d6e5f4a3b2c1d';
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
const ok = async () => ({ ok: true });

/** The status of a request with no token, with the read-only token, and with the full token. */
async function statuses(app: FastifyInstance, method: 'GET' | 'HEAD' | 'POST', url: string): Promise<number[]> {
  const out: number[] = [];
  for (const headers of [{}, bearer(READ), bearer(WRITE)]) out.push((await app.inject({ method, url, headers })).statusCode);
  return out;
}

describe('a route policy, declared in the route options', () => {
  const h = useHarness('sqlite', { apiToken: WRITE, apiReadToken: READ });

  it('when a route declares its access, then that decides who may call it; an /api route declaring nothing needs the full token', async () => {
    const app = await h.rebuild({});
    app.get('/api/test/read', { config: { access: 'read' } }, ok);
    app.post('/api/test/read-by-post', { config: { access: 'read' } }, ok);
    app.get('/api/test/admin', { config: { access: 'admin' } }, ok);
    app.get('/api/test/undeclared', ok);
    app.get('/test/undeclared', ok);
    app.get('/test/admin', { config: { access: 'admin' } }, ok);
    await app.register(async (plugin) => {
      declareRoutes(plugin, { access: 'read' });
      plugin.get('/api/test/plugin-read', ok);
      plugin.get('/api/test/plugin-admin', { config: { access: 'admin' } }, ok);
    });

    expect(await statuses(app, 'GET', '/api/test/read')).toEqual([401, 200, 200]);
    expect(await statuses(app, 'HEAD', '/api/test/read')).toEqual([401, 200, 200]);
    // The policy decides, not the method.
    expect(await statuses(app, 'POST', '/api/test/read-by-post')).toEqual([401, 200, 200]);
    expect(await statuses(app, 'GET', '/api/test/admin')).toEqual([401, 403, 200]);
    expect(await statuses(app, 'GET', '/api/test/undeclared')).toEqual([401, 403, 200]);
    expect(await statuses(app, 'GET', '/test/undeclared')).toEqual([200, 200, 200]);
    expect(await statuses(app, 'GET', '/test/admin')).toEqual([401, 403, 200]);
    // What a plugin declares for its routes, unless a route says otherwise.
    expect(await statuses(app, 'GET', '/api/test/plugin-read')).toEqual([401, 200, 200]);
    expect(await statuses(app, 'GET', '/api/test/plugin-admin')).toEqual([401, 403, 200]);
    // Unknown paths: under /api any valid token reaches the 404; elsewhere none is needed.
    expect(await statuses(app, 'GET', '/api/test/nothing-here')).toEqual([401, 404, 404]);
    expect(await statuses(app, 'GET', '/test/nothing-here')).toEqual([404, 404, 404]);
  });

  it('when a route is registered, then its config holds the whole policy, defaults filled in', async () => {
    const app = await h.rebuild({});
    const policy = async (request: FastifyRequest) => {
      const { access, longRunning, changesSales, page, rateLimited } = request.routeOptions.config;
      return { access, longRunning, changesSales, page, rateLimited };
    };
    app.get('/api/test/policy', policy);
    app.post('/api/test/policy', { config: { access: 'read', longRunning: true } }, policy);
    const get = await app.inject({ url: '/api/test/policy', headers: bearer(WRITE) });
    expect(get.json()).toEqual({ access: 'admin', longRunning: false, changesSales: false, page: false, rateLimited: true });
    const post = await app.inject({ method: 'POST', url: '/api/test/policy', headers: bearer(READ) });
    expect(post.json()).toEqual({ access: 'read', longRunning: true, changesSales: true, page: false, rateLimited: true });
  });

  it('when a route declares changesSales, then the metrics answered after it re-read the data version; when it declares false, they do not', async () => {
    const app = await h.rebuild({ cacheMaxStaleMs: 60_000 });
    // The harness empties every table, the data version's too.
    await sql`INSERT INTO data_version (id, version) VALUES (1, 1)`.execute(h.database.writer);
    // Each moves the data version on behind the cache's back, as a change to sales does.
    const bump = async () => {
      await sql`UPDATE data_version SET version = version + 1 WHERE id = 1`.execute(h.database.writer);
      return {};
    };
    app.get('/api/test/changes-by-get', { config: { changesSales: true } }, bump);
    app.post('/api/test/keeps', { config: { changesSales: false } }, bump);
    app.post('/api/test/undeclared-post', bump);
    const etag = async () => (await app.inject({ url: '/api/metrics/revenue', headers: bearer(READ) })).headers.etag;
    const call = (method: 'GET' | 'POST', url: string) => app.inject({ method, url, headers: bearer(WRITE) });

    const first = await etag();
    await call('POST', '/api/test/keeps');
    expect(await etag()).toBe(first);
    await call('GET', '/api/test/changes-by-get');
    const second = await etag();
    expect(second).not.toBe(first);
    // A write that declares nothing is taken to change sales.
    await call('POST', '/api/test/undeclared-post');
    expect(await etag()).not.toBe(second);
  });

  it('when a route declares longRunning, then it outlasts REQUEST_TIMEOUT_MS; a route that does not gets the 503', async () => {
    const app = await h.rebuild({ requestTimeoutMs: 100 });
    const slow = async () => {
      await new Promise((resolve) => setTimeout(resolve, 400));
      return { done: true };
    };
    app.get('/api/test/long', { config: { longRunning: true } }, slow);
    app.get('/api/test/short', slow);
    expect((await app.inject({ url: '/api/test/long', headers: bearer(WRITE) })).json()).toEqual({ done: true });
    const cut = await app.inject({ url: '/api/test/short', headers: bearer(WRITE) });
    expect(cut.statusCode).toBe(503);
    expect(cut.json()).toMatchObject({ error: 'timeout' });
  });

  it('when a route declares rateLimited false or page, then it is never counted, or gets the page headers', async () => {
    const app = await h.rebuild({ rateLimitMax: 2 });
    app.get('/test/probe', { config: { rateLimited: false } }, ok);
    app.get('/test/page', { config: { page: true } }, ok);
    for (let i = 0; i < 5; i++) expect((await app.inject({ url: '/test/probe', remoteAddress: '10.1.1.1' })).statusCode).toBe(200);
    const page = await app.inject({ url: '/test/page', remoteAddress: '10.1.1.2' });
    expect(page.headers['x-frame-options']).toBe('SAMEORIGIN');
    expect((await app.inject({ url: '/test/page', remoteAddress: '10.1.1.2' })).statusCode).toBe(200);
    expect((await app.inject({ url: '/test/page', remoteAddress: '10.1.1.2' })).statusCode).toBe(429);
  });
});
