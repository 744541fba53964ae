import { Migrator, sql, type MigrationResultSet } from 'kysely';
import type { DB } from './database.js';
import { migrations } from './migrations/index.js';

/** The one migrator used by `npm start`, the CLI and the tests. */
export function createMigrator(db: DB): Migrator {
  return new Migrator({
    db,
    provider: { getMigrations: async () => migrations },
    migrationTableName: 'zinc_migrations',
    migrationLockTableName: 'zinc_migrations_lock',
  });
}

function check({ error, results }: MigrationResultSet): MigrationResultSet {
  if (error) {
    const failed = results?.find((r) => r.status === 'Error');
    const detail = error instanceof Error ? error.message : String(error);
    throw new Error(`migration ${failed?.migrationName ?? ''} failed: ${detail}`.replace('  ', ' '));
  }
  return { results };
}

/** Brings the schema to the newest migration. Returns the names applied. */
export async function migrateToLatest(db: DB): Promise<string[]> {
  await assertSchemaNotNewer(db);
  const { results } = check(await createMigrator(db).migrateToLatest());
  return (results ?? []).map((r) => r.migrationName);
}

/** Reverts the newest applied migration. Returns its name, or undefined when none was applied. */
export async function migrateDown(db: DB): Promise<string | undefined> {
  const { results } = check(await createMigrator(db).migrateDown());
  return results?.[0]?.migrationName;
}

export interface SchemaStatus {
  applied: string[];
  pending: string[];
  /** Applied in the database but unknown to this build: the schema is newer than the code. */
  unknown: string[];
}

/** Which migrations the database has, compared with the ones this build knows. */
export async function schemaStatus(db: DB): Promise<SchemaStatus> {
  const known = Object.keys(migrations);
  let appliedNames: string[] = [];
  // A database no migration has touched has no zinc_migrations table yet.
  const tables = await db.introspection.getTables({ withInternalKyselyTables: true });
  if (tables.some((t) => t.name === 'zinc_migrations')) {
    const rows = await sql<{ name: string }>`SELECT name FROM zinc_migrations ORDER BY name`.execute(db);
    appliedNames = rows.rows.map((r) => r.name);
  }
  const applied = new Set(appliedNames);
  return {
    applied: known.filter((n) => applied.has(n)),
    pending: known.filter((n) => !applied.has(n)),
    unknown: appliedNames.filter((n) => !known.includes(n)),
  };
}

/** Refuses to run against a schema newer than this build, with what to do about it. */
export async function assertSchemaNotNewer(db: DB): Promise<void> {
  const { unknown } = await schemaStatus(db);
  if (unknown.length > 0) {
    throw new Error(
      `the database schema is newer than this build (it has migration ${unknown.join(', ')}); ` +
        'deploy the newer image, or run "zinc migrate down" with the newer build first',
    );
  }
}
