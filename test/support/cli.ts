import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';

/** The built CLI: tests run it as an operator does, a real process with a real environment. */
export const CLI = path.resolve('dist/src/cli.js');

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * A runner of `zinc ARGS` on the SQLite file `databaseFile` (unless `env` names another
 * DATABASE_URL), with only PATH inherited: what it prints and its exit code, never a throw.
 */
export function cliRunner(databaseFile: string, timeoutMs = 20_000): (args: string[], env?: Record<string, string | undefined>) => Promise<CliRun> {
  const run = promisify(execFile);
  return async (args, env = {}) => {
    try {
      const { stdout, stderr } = await run(process.execPath, [CLI, ...args], {
        env: { PATH: process.env.PATH, DATABASE_URL: `sqlite:${databaseFile}`, ...env },
        timeout: timeoutMs,
      });
      return { code: 0, stdout, stderr };
    } catch (error) {
      const e = error as { code: number; stdout: string; stderr: string };
      return { code: e.code, stdout: e.stdout, stderr: e.stderr };
    }
  };
}
