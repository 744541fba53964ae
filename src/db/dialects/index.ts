import { mkdirSync } from 'node:fs';
import path from 'node:path';
import type { DatabaseConfig } from '../../config.js';
import type { Database, DialectModule, DialectName, OpenOptions } from '../database.js';
import { mysqlModule } from './mysql/index.js';
import { postgresModule } from './postgres/index.js';
import { sqliteModule } from './sqlite/index.js';

/** Every database Zinc runs on. A new one is a module here and a URL scheme in config.ts. */
const MODULES: { [K in DialectName]: DialectModule<Extract<DatabaseConfig, { kind: K }>> } = {
  sqlite: sqliteModule,
  mysql: mysqlModule,
  postgres: postgresModule,
};

function moduleOf<C extends DatabaseConfig>(config: C): DialectModule<C> {
  return MODULES[config.kind] as unknown as DialectModule<C>;
}

/** The error codes of every database's driver, by meaning (see DialectModule.errorCodes). */
export const DRIVER_ERROR_CODES = {
  unavailable: new Set(Object.values(MODULES).flatMap((m) => m.errorCodes.unavailable)),
  notWritable: new Set(Object.values(MODULES).flatMap((m) => m.errorCodes.notWritable)),
  unavailableMessages: Object.values(MODULES).flatMap((m) => m.errorCodes.unavailableMessage ?? []),
};

/** A database's module by name: what it is before one is open (its money columns, its backups). */
export function dialectModule(name: DialectName): DialectModule {
  return MODULES[name] as unknown as DialectModule;
}

/** Opens the database named by the configuration (creating the SQLite file and folder if needed). */
export function openDatabase(config: DatabaseConfig, options: OpenOptions = {}): Database {
  return moduleOf(config).open(config, options);
}

/** A file name for a backup taken now: `backups/zinc-20261125T101500Z.sqlite` or `.sql`. */
export function defaultBackupPath(config: DatabaseConfig, now = new Date()): string {
  const stamp = now.toISOString().replace(/[-:]/g, '').replace(/\.\d+/, '');
  return path.resolve('backups', `zinc-${stamp}.${moduleOf(config).backupExtension}`);
}

/**
 * Writes a consistent copy of the database to `file` while the service keeps running.
 * SQLite: the online backup API. MySQL: `mysqldump --single-transaction` (or `mariadb-dump`).
 */
export async function backupDatabase(config: DatabaseConfig, file: string): Promise<void> {
  mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
  await moduleOf(config).backup(config, file);
}
