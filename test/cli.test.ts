import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { migrations } from '../src/db/migrations/index.js';
import { csv } from './support/harness.js';
import { cliRunner } from './support/cli.js';

// The CLI is tested as an operator runs it: the built entry point, a real process, real env.
const work = mkdtempSync(path.join(tmpdir(), 'zinc-cli-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));
const zinc = cliRunner(path.join(work, 'cli.sqlite'));

describe('zinc CLI', () => {
  it.each([
    [{ PORT: 'abc' }, /^zinc: PORT must be a whole number/],
    [{ DATABASE_URL: 'mssql://x/y' }, /^zinc: DATABASE_URL has unsupported scheme "mssql"/],
    [{ SALES_DIR: '/nonexistent/zinc' }, /^zinc: SALES_DIR folder \/nonexistent\/zinc does not exist/],
  ])('when the configuration is bad (%o), then start-up stops with one line naming the variable', async (env, line) => {
    const { code, stderr } = await zinc(['serve'], env);
    expect(code).toBe(1);
    expect(stderr.trim().split('\n')).toHaveLength(1);
    expect(stderr).toMatch(line);
  });

  it('when import runs on a folder, then it prints each file, exits 0, and a second run skips', async () => {
    const dir = mkdtempSync(path.join(work, 'sales-'));
    writeFileSync(path.join(dir, 'a.csv'), csv([['2024-01-01', 'CLI-1', 'P', '1.50']]));
    const first = await zinc(['import', dir]);
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout).toMatch(/^success\s+a\.csv \(import \d+\) 1 rows/m);
    const second = await zinc(['import', dir]);
    expect(second.stdout).toMatch(/^skipped\s+a\.csv .*already imported as a\.csv/m);
  });

  it('when a file fails, then import exits 1; with --on-error skip the valid rows are kept', async () => {
    const dir = mkdtempSync(path.join(work, 'sales-'));
    writeFileSync(path.join(dir, 'b.csv'), csv([['2024-01-01', 'CLI-2', 'P', '1.00'], ['2024-01-01', 'CLI-3', 'P', 'x']]));
    const strict = await zinc(['import', dir]);
    expect(strict.code).toBe(1);
    expect(strict.stdout).toMatch(/^failed\s+b\.csv/m);
    const skip = await zinc(['import', dir, '--on-error', 'skip']);
    expect(skip.code).toBe(0);
    expect(skip.stdout).toMatch(/^partial\s+b\.csv .*1 rows, 1 rejected/m);
  });

  it('when migrate down then latest runs, then the schema goes away and comes back', async () => {
    const env = { DATABASE_URL: `sqlite:${path.join(work, 'migrate.sqlite')}` };
    const names = Object.keys(migrations);
    expect((await zinc(['migrate'], env)).stdout).toMatch(`applied: ${names.join(', ')}`);
    expect((await zinc(['migrate', 'latest'], env)).stdout).toMatch(/already at the latest/);
    expect((await zinc(['migrate', 'status'], env)).stdout.trim().split('\n')).toEqual(names.map((n) => `applied  ${n}`));
    expect((await zinc(['migrate', 'down'], env)).stdout).toMatch(`reverted: ${names.at(-1)}`);
    expect((await zinc(['migrate', 'status'], env)).stdout).toMatch(`pending  ${names.at(-1)}`);
    for (const name of names.slice(0, -1).reverse()) {
      expect((await zinc(['migrate', 'down'], env)).stdout).toMatch(`reverted: ${name}`);
    }
    expect((await zinc(['migrate', 'down'], env)).stdout).toMatch(/no migration to revert/);
    expect((await zinc(['migrate'], env)).stdout).toMatch(/applied/);
    // Thirteen processes, each about a second on an idle machine: room for a busy CI.
  }, 120_000);
});
