import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { createConnection } from 'mysql2/promise';
import pg from 'pg';
import { randomBytes } from 'node:crypto';
import type { DatabaseConfig } from '../../src/config.js';
import { parseDatabaseUrl } from '../../src/config.js';

const run = promisify(execFile);

/**
 * Replicated topologies for the tests that need more than one server, started by scripts:
 * MariaDB's from the machine's shared cluster scripts (`replica.sh`: a primary on 3307 and a
 * replica on 3308), PostgreSQL's from scripts/topologies/pg-replica.sh (5433 and 5434). Tests
 * run on them when ZINC_TEST_REPLICAS=1; CI also sets ZINC_REQUIRE_REPLICAS=1, so that a missing
 * script fails the run instead of skipping. `up` is idempotent: CI starts each topology once,
 * and a test file's `up` finds it running.
 */
export const REPLICAS_ENABLED = process.env.ZINC_TEST_REPLICAS === '1' || process.env.ZINC_REQUIRE_REPLICAS === '1';

/** Where the machine's shared cluster scripts are (ZINC_CLUSTERS_SCRIPTS, or beside the checkout). */
export function sharedClusterScript(name: string): string | undefined {
  const candidates = [
    process.env.ZINC_CLUSTERS_SCRIPTS,
    path.resolve('../shared/clusters'),
    '/work/shared/clusters',
  ].filter((d): d is string => !!d);
  return candidates.map((dir) => path.join(dir, name)).find((file) => existsSync(file));
}

export interface ReplicaTopology {
  kind: 'mysql' | 'postgres';
  /** Starts it if it is not running (idempotent). */
  up(): Promise<void>;
  /** Delays the replica by this many seconds (0: no delay). */
  lag(seconds: number): Promise<void>;
  /** Kills the replica (connections refused). */
  stopReplica(): Promise<void>;
  /** Starts it again and waits until it has caught up. */
  startReplica(): Promise<void>;
  /** A new database on the primary, and its URL there and on the replica (as a user the replica's read-only mode binds). */
  createDatabase(): Promise<{ primary: DatabaseConfig; replica: DatabaseConfig; drop(): Promise<void> }>;
}

function scriptTopology(
  kind: 'mysql' | 'postgres',
  script: string,
  servers: { primary: string; replica: string },
): ReplicaTopology {
  const call = async (...args: string[]) => {
    try {
      await run('bash', [script, ...args], { timeout: 240_000 });
    } catch (error) {
      const e = error as { stderr?: string; message: string };
      throw new Error(`${path.basename(script)} ${args.join(' ')} failed: ${e.stderr?.trim().split('\n').slice(-5).join('\n') ?? e.message}`);
    }
  };
  return {
    kind,
    up: () => call('up'),
    lag: (seconds) => call('lag', String(seconds)),
    stopReplica: () => call('stop-replica'),
    startReplica: () => call('start-replica'),
    async createDatabase() {
      const name = `zinc_test_${randomBytes(5).toString('hex')}`;
      if (kind === 'mysql') {
        const admin = await createConnection(servers.primary);
        await admin.query(`CREATE DATABASE \`${name}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin`);
        await admin.end();
      } else {
        const admin = new pg.Client({ connectionString: `${servers.primary}/postgres` });
        await admin.connect();
        await admin.query(`CREATE DATABASE "${name}" TEMPLATE template0 ENCODING 'UTF8'`);
        await admin.end();
      }
      return {
        primary: parseDatabaseUrl(`${servers.primary}/${name}`),
        replica: parseDatabaseUrl(`${servers.replica}/${name}`),
        async drop() {
          if (kind === 'mysql') {
            const admin = await createConnection(servers.primary);
            await admin.query(`DROP DATABASE IF EXISTS \`${name}\``);
            await admin.end();
          } else {
            const admin = new pg.Client({ connectionString: `${servers.primary}/postgres` });
            await admin.connect();
            await admin.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
            await admin.end();
          }
        },
      };
    },
  };
}

function topologies(): ReplicaTopology[] {
  if (!REPLICAS_ENABLED) return [];
  const mysqlScript = sharedClusterScript('replica.sh');
  const pgScript = path.resolve('scripts/topologies/pg-replica.sh');
  const missing = [!mysqlScript && 'replica.sh (../shared/clusters/)', !existsSync(pgScript) && pgScript].filter(Boolean);
  if (missing.length > 0 && process.env.ZINC_REQUIRE_REPLICAS === '1') {
    throw new Error(`ZINC_REQUIRE_REPLICAS=1 but ${missing.join(' and ')} cannot be found: the replica tests would not run`);
  }
  return [
    ...(mysqlScript
      ? [scriptTopology('mysql', mysqlScript, { primary: 'mysql://root@127.0.0.1:3307', replica: 'mysql://zinc@127.0.0.1:3308' })]
      : []),
    ...(existsSync(pgScript)
      ? [
          scriptTopology('postgres', pgScript, {
            primary: 'postgres://postgres@127.0.0.1:5433',
            // A hot standby refuses every write, a superuser's too.
            replica: 'postgres://postgres@127.0.0.1:5434',
          }),
        ]
      : []),
  ];
}

/** The replicated topologies the tests run on (none unless ZINC_TEST_REPLICAS=1). */
export const REPLICA_TOPOLOGIES = topologies();
