import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import { createConnection } from 'mysql2/promise';
import { parseDatabaseUrl, type DatabaseConfig } from '../../src/config.js';
import { sharedClusterScript } from './topologies.js';

const run = promisify(execFile);

/**
 * A MariaDB Galera cluster for the tests of what Zinc does on a multi-primary cluster: its nodes'
 * URLs in ZINC_TEST_GALERA_URLS, comma-separated, without a database
 * (`mysql://root@127.0.0.1:3321,mysql://root@127.0.0.1:3322,mysql://root@127.0.0.1:3323`, the
 * nodes of the machine's shared `galera.sh`). CI also sets ZINC_REQUIRE_GALERA=1, so that a
 * missing list fails the run instead of skipping.
 */
export const GALERA_URLS = (process.env.ZINC_TEST_GALERA_URLS ?? '')
  .split(',')
  .map((url) => url.trim().replace(/\/+$/, ''))
  .filter((url) => url !== '');

if (process.env.ZINC_REQUIRE_GALERA === '1' && GALERA_URLS.length < 2) {
  throw new Error('ZINC_REQUIRE_GALERA=1 but ZINC_TEST_GALERA_URLS does not list two nodes or more: the Galera tests would not run');
}

/**
 * The shared cluster script (`galera.sh up|status|kill N|start N`: ZINC_CLUSTERS_SCRIPTS,
 * ../shared/clusters or /work/shared/clusters), or undefined where there is none.
 */
export const GALERA_SCRIPT = sharedClusterScript('galera.sh');

/** Runs `galera.sh` with `args` (`up`, `kill 2`, `start 2`): idempotent `up`, a node failure, its return. */
export async function galera(...args: string[]): Promise<string> {
  if (!GALERA_SCRIPT) throw new Error('galera.sh cannot be found (set ZINC_CLUSTERS_SCRIPTS)');
  try {
    return (await run('bash', [GALERA_SCRIPT, ...args], { timeout: 240_000 })).stdout;
  } catch (error) {
    const e = error as { stderr?: string; message: string };
    throw new Error(`galera.sh ${args.join(' ')} failed: ${e.stderr?.trim().split('\n').slice(-5).join('\n') ?? e.message}`);
  }
}

export interface GaleraDatabase {
  /** The database as seen through each node, in the order of GALERA_URLS. */
  nodes: DatabaseConfig[];
  drop(): Promise<void>;
}

/**
 * A new database on the cluster, created through the first node; resolves once every node has
 * it (DDL is replicated in total order, but a node may apply it a moment later).
 */
export async function createGaleraDatabase(): Promise<GaleraDatabase> {
  const name = `zinc_test_${randomBytes(5).toString('hex')}`;
  const admin = await createConnection(GALERA_URLS[0]!);
  await admin.query(`CREATE DATABASE \`${name}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin`);
  await admin.end();
  for (const url of GALERA_URLS) {
    const node = await createConnection(url);
    try {
      for (let waited = 0; ((await node.query('SHOW DATABASES LIKE ?', [name]))[0] as unknown[]).length === 0; waited += 50) {
        if (waited > 10_000) throw new Error(`${url} has not seen database ${name} after 10 s`);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    } finally {
      await node.end();
    }
  }
  return {
    nodes: GALERA_URLS.map((url) => parseDatabaseUrl(`${url}/${name}`)),
    async drop() {
      const conn = await createConnection(GALERA_URLS[0]!);
      await conn.query(`DROP DATABASE IF EXISTS \`${name}\``);
      await conn.end();
    },
  };
}
