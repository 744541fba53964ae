import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import Fastify from 'fastify';
import { afterAll, describe, expect, it } from 'vitest';
import { dashboardRoutes, DEFAULT_DASHBOARD_DIR } from '../src/http/dashboard.routes.js';
import { useHarness } from './support/harness.js';

/** The built dashboard (web/dist, made by `npm run build`) and how the service serves it. */

const BUDGET_BYTES = 250 * 1024;
const ASSETS = path.join(DEFAULT_DASHBOARD_DIR, 'assets');

function requireBuild(): void {
  if (!existsSync(path.join(DEFAULT_DASHBOARD_DIR, 'index.html'))) {
    throw new Error(`${DEFAULT_DASHBOARD_DIR}/index.html is missing: run \`npm run build\` first (npm test does)`);
  }
}

describe('dashboard bundle', () => {
  it('is under 250 KB gzipped, all assets together', () => {
    requireBuild();
    const files = readdirSync(ASSETS).filter((name) => statSync(path.join(ASSETS, name)).isFile());
    expect(files.some((name) => name.endsWith('.js'))).toBe(true);
    const sizes = files.map((name) => ({ name, gzip: gzipSync(readFileSync(path.join(ASSETS, name)), { level: 9 }).length }));
    const total = sizes.reduce((sum, file) => sum + file.gzip, 0);
    console.log(`dashboard bundle: ${(total / 1024).toFixed(1)} KB gzipped (${sizes.map((f) => `${f.name} ${(f.gzip / 1024).toFixed(1)} KB`).join(', ')})`);
    expect(total).toBeLessThan(BUDGET_BYTES);
  });
});

describe('dashboard route', () => {
  const h = useHarness('sqlite');
  const tmp = mkdtempSync(path.join(tmpdir(), 'zinc-no-dashboard-'));
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  it('serves the page at / under the CSP, with only external scripts, and its assets for a year', async () => {
    requireBuild();
    const page = await h.app.inject({ url: '/' });
    expect(page.statusCode).toBe(200);
    expect(page.headers['content-type']).toMatch(/^text\/html/);
    expect(page.headers['cache-control']).toBe('no-cache');
    const csp = String(page.headers['content-security-policy']);
    expect(csp).toContain("script-src 'self'");
    expect(csp).not.toContain("'unsafe-inline' 'unsafe-eval'");
    expect(page.body).toContain('<meta name="zinc-auth" content="none">');
    // Every script is a file of this origin: nothing inline for the CSP to block.
    expect(page.body).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/);
    const assets = [...page.body.matchAll(/(?:src|href)="(\/assets\/[^"]+)"/g)].map((m) => m[1]!);
    expect(assets.some((a) => a.endsWith('.js'))).toBe(true);
    expect(assets.some((a) => a.endsWith('.css'))).toBe(true);
    for (const asset of assets) {
      const res = await h.app.inject({ url: asset });
      expect(res.statusCode, asset).toBe(200);
      expect(res.headers['cache-control']).toBe('public, max-age=31536000, immutable');
      if (asset.endsWith('.js')) expect(res.headers['content-type']).toMatch(/javascript/);
    }
  });

  it('keeps unknown paths a JSON 404 (no catch-all route)', async () => {
    for (const url of ['/assets/nothing-here.js', '/nowhere', '/index.html']) {
      const res = await h.app.inject({ url });
      expect(res.statusCode, url).toBe(404);
      expect(res.json()).toMatchObject({ error: 'not_found' });
    }
  });

  it('when API_TOKEN is set, serves the page without it and tells the page to ask for it; /api still needs it', async () => {
    requireBuild();
    const app = await h.rebuild({ apiToken: 'dashboard-secret' });
    const page = await app.inject({ url: '/' });
    expect(page.statusCode).toBe(200);
    expect(page.body).toContain('<meta name="zinc-auth" content="bearer">');
    expect(page.body).not.toContain('dashboard-secret');
    expect((await app.inject({ url: '/api/imports/' })).statusCode).toBe(401);
    expect((await app.inject({ url: '/api/nothing-here' })).statusCode).toBe(401);
  });

  it('when the page is not built, / answers 503 saying to run npm run build', async () => {
    const app = Fastify();
    await app.register(dashboardRoutes, { tokenRequired: false, dir: tmp });
    const res = await app.inject({ url: '/' });
    expect(res.statusCode).toBe(503);
    expect(res.json()).toEqual({ error: 'dashboard_not_built', message: expect.stringContaining('npm run build') });
    await app.close();
  });

  it('when a build lacks the token marker, the service refuses to start instead of serving a page that never asks', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'zinc-web-'));
    mkdirSync(path.join(dir, 'assets'));
    writeFileSync(path.join(dir, 'index.html'), '<!doctype html><title>Zinc</title>');
    const app = Fastify();
    await expect(app.register(dashboardRoutes, { tokenRequired: true, dir }).ready()).rejects.toThrow(/zinc-auth/);
    await app.close().catch(() => {});
    rmSync(dir, { recursive: true, force: true });
  });
});
