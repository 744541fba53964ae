import { Migrator, type MigrationResultSet } from 'kysely';
import type { DB } from './connection.js';
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
  const { results } = check(await createMigrator(db).migrateToLatest());
  return (results ?? []).map((r) => r.migrationName);
}

/** Reverts the newest applied migration. Returns its name, or undefined when none was applied. */
export async function migrateDown(db: DB): Promise<string | undefined> {
  const { results } = check(await createMigrator(db).migrateDown());
  return results?.[0]?.migrationName;
}
