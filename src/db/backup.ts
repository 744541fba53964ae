import { spawn, spawnSync } from 'node:child_process';
import { createWriteStream, mkdirSync } from 'node:fs';
import path from 'node:path';
import SqliteDatabase from 'better-sqlite3';
import type { DatabaseConfig } from '../config.js';

/** A file name for a backup taken now: `backups/zinc-20261125T101500Z.sqlite` or `.sql`. */
export function defaultBackupPath(config: DatabaseConfig, now = new Date()): string {
  const stamp = now.toISOString().replace(/[-:]/g, '').replace(/\.\d+/, '');
  return path.resolve('backups', `zinc-${stamp}.${config.kind === 'sqlite' ? 'sqlite' : 'sql'}`);
}

/**
 * Writes a consistent copy of the database to `file` while the service keeps running.
 * SQLite: the online backup API. MySQL: `mysqldump --single-transaction` (or `mariadb-dump`).
 */
export async function backupDatabase(config: DatabaseConfig, file: string): Promise<void> {
  mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
  if (config.kind === 'sqlite') {
    const conn = new SqliteDatabase(config.path, { readonly: true, fileMustExist: true });
    try {
      await conn.backup(file);
    } finally {
      conn.close();
    }
    return;
  }
  const tool = ['mysqldump', 'mariadb-dump'].find((name) => spawnSync(name, ['--version']).status === 0);
  if (!tool) {
    throw new Error(
      'neither mysqldump nor mariadb-dump is installed; install the MySQL client tools (e.g. apt-get install default-mysql-client)',
    );
  }
  const url = new URL(config.url);
  const args = [
    '--single-transaction',
    '--quick',
    '--no-tablespaces',
    '--skip-lock-tables',
    `--host=${url.hostname}`,
    `--port=${config.port}`,
    `--user=${decodeURIComponent(url.username)}`,
    config.database,
  ];
  await new Promise<void>((resolve, reject) => {
    const child = spawn(tool, args, {
      // The password goes through the environment, never the command line (visible in ps).
      env: { ...process.env, MYSQL_PWD: decodeURIComponent(url.password) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const out = createWriteStream(file);
    let stderr = '';
    child.stdout.pipe(out);
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      out.close();
      if (code === 0) resolve();
      else reject(new Error(`${tool} exited with ${code}: ${stderr.trim().split('\n').pop() ?? ''}`));
    });
  });
}
