import { MysqlAdapter, MysqlDialect as KyselyMysqlDialect, sql, type MigrationLockOptions, type MysqlDialectConfig, type RawBuilder } from 'kysely';
import type { AnyDB, DB, FileClaims, WriteLockHold } from '../../database.js';
import { holdOnOwnConnection, whileHolding } from '../shared.js';
import { LeaseLocks, leaseTuning, MIGRATE } from './leases.js';
import { isGalera } from './galera.js';

/**
 * Zinc's locks on MySQL and MariaDB — the writer lock, per-file claims, a process's claim on
 * itself, and the migration lock — in one of two forms, chosen once per open database:
 *
 * - on a single server, named locks (GET_LOCK): held by a connection and dropped by the server
 *   the moment that connection dies, so a crashed holder frees them at once;
 * - on a Galera cluster (`wsrep_on`), whose named locks hold on one node only, leases in the
 *   `zinc_locks` table (leases.ts): a crashed holder's lock is free after the lease's TTL.
 */
export class MysqlLocks {
  readonly claims: FileClaims;
  private readonly leases: LeaseLocks;
  private readonly named: FileClaims;
  private mode: Promise<boolean> | undefined;

  /** `writer`: the pool (renewals of leases, a process's claim on itself). */
  constructor(writer: () => DB) {
    this.leases = new LeaseLocks(writer);
    this.named = namedFileClaims(writer);
    const leased = this.leases.claims();
    const claims = async (db: AnyDB) => ((await this.usesLeases(db)) ? leased : this.named);
    this.claims = {
      acquire: async (conn, sha256) => (await claims(conn)).acquire(conn, sha256),
      release: async (conn, sha256) => (await claims(conn)).release(conn, sha256),
      holdOwner: async (owner) => (await claims(writer())).holdOwner(owner),
      isAbandoned: async (db, record, here) => (await claims(db)).isAbandoned(db, record, here),
    };
  }

  /** The writer lock (see Dialect.withWriteLock). */
  async withWriteLock<T>(conn: DB, work: (hold: WriteLockHold) => Promise<T>, signal?: AbortSignal): Promise<T> {
    return (await this.usesLeases(conn)) ? this.leases.withWriteLock(conn, work, signal) : namedWriteLock(conn, work, signal);
  }

  /**
   * Kysely's MySQL dialect whose migration lock is this one: Kysely's own is a named lock, which
   * on a cluster would let two migrators on two nodes run the same migrations at once (and some
   * MariaDB releases refuse GET_LOCK under Galera outright). Every Migrator on the database gets
   * it, whoever creates it.
   */
  kyselyDialect(config: MysqlDialectConfig): KyselyMysqlDialect {
    const usesLeases = (db: AnyDB) => this.usesLeases(db);
    const leases = this.leases;
    class Adapter extends MysqlAdapter {
      override async acquireMigrationLock(db: AnyDB, options: MigrationLockOptions): Promise<void> {
        if (!(await usesLeases(db))) return super.acquireMigrationLock(db, options);
        await leases.takeWaiting(db, MIGRATE, MIGRATION_WAIT_MS, () => new Error('another migration kept the migration lock for over an hour'));
      }
      override async releaseMigrationLock(db: AnyDB, options: MigrationLockOptions): Promise<void> {
        if (!(await usesLeases(db))) return super.releaseMigrationLock(db, options);
        await leases.releaseOn(db, MIGRATE);
      }
    }
    return new (class extends KyselyMysqlDialect {
      override createAdapter() {
        return new Adapter();
      }
    })(config);
  }

  /** Whether this database's locks are leases: a Galera node (asked once, at the first lock). */
  private usesLeases(db: AnyDB): Promise<boolean> {
    this.mode ??= isGalera(db).then(
      (galera) => {
        this.leases.onGalera = galera;
        return galera || leaseTuning.always;
      },
      (error: unknown) => {
        this.mode = undefined;
        throw error;
      },
    );
    return this.mode;
  }
}

/** As long as Kysely's own migration lock waits. */
const MIGRATION_WAIT_MS = 60 * 60 * 1000;

/*
 * Named locks (GET_LOCK): held by a connection, dropped by the server when that connection dies,
 * so a crashed holder frees them. Names are server-wide: each is qualified by the database (a hash
 * of its name), within MySQL's 64 characters.
 */

/** Takes a named lock, waiting up to `seconds`. True when held; throws when the server refuses. */
async function tryLock(conn: DB, name: RawBuilder<unknown>, seconds: number): Promise<boolean> {
  const { rows } = await sql<{ ok: number | null }>`SELECT GET_LOCK(${name}, ${seconds}) AS ok`.execute(conn);
  const ok = rows[0]?.ok;
  if (ok === null || ok === undefined) throw new Error('GET_LOCK failed: the server could not take the lock');
  return Number(ok) === 1;
}

async function unlock(conn: DB, name: RawBuilder<unknown>): Promise<void> {
  await sql`SELECT RELEASE_LOCK(${name})`.execute(conn);
}

const writerLock = sql`CONCAT('zinc:writer:', SHA1(DATABASE()))`;
const fileLock = (sha256: string) => sql`CONCAT('zinc:import:', LEFT(SHA1(DATABASE()), 8), ':', ${sha256.slice(0, 40)})`;
const ownerLock = (owner: string) => sql`${`zinc:owner:${owner.slice(-32)}`}`;

/**
 * The writer lock, held on the transaction's connection from before BEGIN to after COMMIT or
 * ROLLBACK. Without it, two imports whose dates overlap deadlock in the rollup upkeep (each reads
 * the days the other is writing) and InnoDB fails one of them. Asked for a second at a time, so
 * that a shutdown (`signal`) ends the wait.
 */
function namedWriteLock<T>(conn: DB, work: (hold: WriteLockHold) => Promise<T>, signal?: AbortSignal): Promise<T> {
  // GET_LOCK waits up to a second on the server: no pause between tries.
  return whileHolding(conn, { take: (c) => tryLock(c, writerLock, 1), release: (c) => unlock(c, writerLock) }, work, { signal, pauseMs: 0 });
}

/**
 * Per-file claims: the importer holds a lock named after the file on the very connection that
 * runs the import's transaction, so "lock free" means exactly "nothing of that import can still
 * commit". While a process has claimed files it has not started loading (asynchronous runs), it
 * holds a lock named after itself on a connection of its own, so others see its records as alive.
 */
function namedFileClaims(writer: () => DB): FileClaims {
  return {
    acquire: (conn, sha256) => tryLock(conn, fileLock(sha256), 0),
    release: (conn, sha256) => unlock(conn, fileLock(sha256)),
    holdOwner: (owner) => holdOnOwnConnection(writer(), { take: (c) => tryLock(c, ownerLock(owner), 0), release: (c) => unlock(c, ownerLock(owner)) }),
    async isAbandoned(db, record, here) {
      if (record.owner === here.owner && here.active) return false;
      const { rows } = await sql<{ file: number | null; owner: number | null }>`
        SELECT IS_FREE_LOCK(${fileLock(record.sha256)}) AS file, IS_FREE_LOCK(${ownerLock(record.owner ?? '')}) AS owner`.execute(db);
      const fileFree = here.leased === true || Number(rows[0]?.file) === 1;
      return fileFree && (record.owner === here.owner || Number(rows[0]?.owner) === 1);
    },
  };
}
