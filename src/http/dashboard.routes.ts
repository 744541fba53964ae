import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import type { FastifyPluginAsync } from 'fastify';
import { declareRoutes } from './route-policy.js';

/**
 * The web dashboard at `/`: the page Vite builds into web/dist (`npm run build`), served by the
 * service itself. The hashed files under /assets/ never change, so browsers may keep them; the
 * page is revalidated every time. Without a build, `/` answers 503 saying how to make one.
 */

/** The folder holding package.json, from wherever this file runs (src/http or dist/src/http). */
function packageRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!existsSync(path.join(dir, 'package.json'))) {
    const parent = path.dirname(dir);
    if (parent === dir) return process.cwd();
    dir = parent;
  }
  return dir;
}

export const DEFAULT_DASHBOARD_DIR = path.join(packageRoot(), 'web', 'dist');

/** The marker in web/index.html that tells the page whether the API wants a token. */
const AUTH_MARKER = '<meta name="zinc-auth" content="none">';

export interface DashboardOptions {
  /** Whether `/api` needs a Bearer token (API_TOKEN is set): the page then asks for it before loading data. */
  tokenRequired: boolean;
  /** The built dashboard (default: web/dist beside package.json). */
  dir?: string;
}

const notBuilt = {
  error: 'dashboard_not_built',
  message: 'the dashboard is not built (web/dist/index.html is missing): run `npm run build`, then restart the service',
};

export const dashboardRoutes: FastifyPluginAsync<DashboardOptions> = async (app, { tokenRequired, dir = DEFAULT_DASHBOARD_DIR }) => {
  // The page and its files (routes @fastify/static adds, which cannot declare a policy) are pages
  // for anyone: the page itself asks for the token its calls to /api need.
  declareRoutes(app, { access: 'open', page: true });
  const indexFile = path.join(dir, 'index.html');
  const assets = path.join(dir, 'assets');
  if (!existsSync(indexFile) || !existsSync(assets)) {
    app.get('/', { schema: { hide: true } }, async (_request, reply) => reply.code(503).send(notBuilt));
    return;
  }

  const built = readFileSync(indexFile, 'utf8');
  // The page learns from this tag whether to ask for a token: a build without it would never ask.
  if (!built.includes(AUTH_MARKER)) throw new Error(`${indexFile} lacks ${AUTH_MARKER}: rebuild the dashboard (npm run build)`);
  const page = built.replace(
    AUTH_MARKER,
    `<meta name="zinc-auth" content="${tokenRequired ? 'bearer' : 'none'}">`,
  );
  app.get('/', { schema: { hide: true } }, async (_request, reply) =>
    reply.type('text/html; charset=utf-8').header('cache-control', 'no-cache').send(page),
  );

  // One route per built file (no catch-all), so unknown paths keep their JSON 404 and /api keeps its token check.
  await app.register(fastifyStatic, {
    root: assets,
    prefix: '/assets/',
    wildcard: false,
    index: false,
    maxAge: '365d',
    immutable: true,
  });
};
