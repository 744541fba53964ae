import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Config } from '../src/config.js';
import { startServer, type RunningServer } from '../src/server.js';
import { testConfig } from './support/config.js';
import { sampleSales } from './dashboard-data.js';

/**
 * The dashboard in a real browser (Debian's Chromium driven by playwright-core) against the real
 * service on SQLite: uploads with progress, KPI tiles against the API's own numbers, chart
 * granularity, the product filter, a failed import's row errors, undo, and the token prompt.
 * Screenshots of each page go to test-results/. Any console error or page error fails the test.
 *
 * Skipped when /usr/bin/chromium is missing, unless ZINC_REQUIRE_BROWSER=1 (CI), which fails.
 * Needs the built page: `npm run build` (npm test does it first).
 * ZINC_DASHBOARD_SCREENSHOT=1 also writes docs/dashboard.png (the README's picture).
 */

const CHROMIUM = '/usr/bin/chromium';
const HAVE_BROWSER = existsSync(CHROMIUM);
if (!HAVE_BROWSER && process.env.ZINC_REQUIRE_BROWSER === '1') {
  throw new Error(`ZINC_REQUIRE_BROWSER=1 but ${CHROMIUM} is missing: install it (apt-get install chromium); the dashboard tests would not run`);
}

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const RESULTS = path.join(ROOT, 'test-results');
const BUILT_PAGE = path.join(ROOT, 'web', 'dist', 'index.html');
const TOKEN = 'dashboard-test-token-7f3a';
const quiet = { info: () => {}, warn: () => {}, error: () => {} };

const LAUNCH_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-quic',
  '--no-first-run',
  '--disable-component-update',
  '--disable-sync',
];

/** Today in UTC (the browser context runs in UTC too), and days around it. */
const DAY_MS = 86_400_000;
const TODAY = new Date().toISOString().slice(0, 10);
const daysAgo = (n: number) => new Date(Date.parse(TODAY) - n * DAY_MS).toISOString().slice(0, 10);

/** "12345.6" → "S$12,345.60": an independent oracle for the page's money format. */
function sgd(value: string): string {
  const [, sign, whole, fraction] = /^(-?)(\d+)\.(\d{2})$/.exec(value)!;
  return `${sign}S$${whole!.replace(/\B(?=(\d{3})+(?!\d))/g, ',')}.${fraction}`;
}
const grouped = (n: number) => n.toLocaleString('en-US');
const cents = (value: string) => BigInt(value.replace('.', ''));
/** expect.poll with room for a machine busy with other test files (its default gives up after 1 s). */
const eventually = <T>(read: () => Promise<T> | T) => expect.poll(read, { timeout: 20_000, interval: 100 });

interface Running {
  server: RunningServer;
  dir: string;
}

async function startZinc(overrides: Partial<Config> = {}): Promise<Running> {
  const dir = mkdtempSync(path.join(tmpdir(), 'zinc-dashboard-'));
  mkdirSync(path.join(dir, 'sales'));
  const config = testConfig({ kind: 'sqlite', path: path.join(dir, 'zinc.sqlite') }, path.join(dir, 'sales'), overrides);
  return { server: await startServer(config, quiet), dir };
}

async function stopZinc(running: Running | undefined): Promise<void> {
  if (!running) return;
  await running.server.close();
  rmSync(running.dir, { recursive: true, force: true });
}

describe.skipIf(!HAVE_BROWSER)('dashboard in Chromium', { timeout: 90_000 }, () => {
  let browser: Browser;
  let zinc: Running;
  let context: BrowserContext;
  let page: Page;
  const problems: string[] = [];

  const url = (p: string) => `${zinc.server.url}${p}`;
  const apiGet = async <T = Record<string, unknown>>(p: string, token?: string): Promise<T> => {
    const response = await fetch(url(p), { headers: token ? { authorization: `Bearer ${token}` } : {} });
    expect(response.status, `${p}: ${response.status}`).toBe(200);
    return (await response.json()) as T;
  };
  const shot = (name: string) => page.screenshot({ path: path.join(RESULTS, `dashboard-${name}.png`), fullPage: true });

  function watch(target: Page) {
    target.on('console', (message) => {
      if (message.type() === 'error') problems.push(`console error: ${message.text()}`);
    });
    target.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  }

  async function openContext(): Promise<void> {
    context = await browser.newContext({ viewport: { width: 1280, height: 900 }, timezoneId: 'UTC', locale: 'en-SG' });
    page = await context.newPage();
    page.setDefaultTimeout(30_000);
    watch(page);
  }

  const revenueTile = (kpi: string) => page.locator(`[data-kpi="${kpi}"]`);

  async function expectTilesToMatch(query: string, token?: string) {
    const api = await apiGet<{
      total_revenue: string;
      order_count: number;
      average_order_value: string | null;
      change: { total_revenue: { percent: string | null }; order_count: { percent: string | null } };
    }>(`/api/metrics/revenue/?${query}&compare=previous_period`, token);
    await eventually(() => revenueTile('revenue').getAttribute('data-value')).toBe(api.total_revenue);
    await eventually(() => revenueTile('orders').getAttribute('data-value')).toBe(String(api.order_count));
    expect(await revenueTile('revenue').locator('.kpi-value').textContent()).toBe(sgd(api.total_revenue));
    expect(await revenueTile('orders').locator('.kpi-value').textContent()).toBe(grouped(api.order_count));
    expect(await revenueTile('aov').getAttribute('data-value')).toBe(api.average_order_value ?? '');
    expect(await revenueTile('aov').locator('.kpi-value').textContent()).toBe(
      api.average_order_value === null ? '—' : sgd(api.average_order_value),
    );
    expect(await revenueTile('revenue').locator('.kpi-change').getAttribute('data-change')).toBe(api.change.total_revenue.percent ?? '');
    expect(await revenueTile('orders').locator('.kpi-change').getAttribute('data-change')).toBe(api.change.order_count.percent ?? '');
    if (api.change.total_revenue.percent !== null) {
      expect(await revenueTile('revenue').locator('.kpi-change').textContent()).toContain(`${api.change.total_revenue.percent}%`);
    }
    return api;
  }

  async function gotoImports() {
    await page.getByRole('link', { name: 'Imports', exact: true }).click();
    await page.getByRole('heading', { name: 'Imports', level: 1 }).waitFor();
  }

  async function gotoRevenue() {
    await page.getByRole('link', { name: 'Revenue', exact: true }).click();
    await page.getByRole('heading', { name: 'Revenue', level: 1 }).waitFor();
  }

  async function uploadWithPicker(name: string, content: string) {
    await page.locator('#csv-file').setInputFiles({ name, mimeType: 'text/csv', buffer: Buffer.from(content) });
  }

  /** A real drop on the drop zone, with the file in a DataTransfer as a browser makes it. */
  async function uploadByDrop(name: string, content: string) {
    const transfer = await page.evaluateHandle(
      `(() => { const data = new DataTransfer(); data.items.add(new File([${JSON.stringify(content)}], ${JSON.stringify(name)}, { type: 'text/csv' })); return data; })()`,
    );
    await page.locator('[data-dropzone]').dispatchEvent('dragover', { dataTransfer: transfer });
    await page.locator('[data-dropzone]').dispatchEvent('drop', { dataTransfer: transfer });
  }

  async function finishedJob(status: string) {
    const job = page.locator(`.job[data-job-status="${status}"]`);
    await job.waitFor({ timeout: 60_000 });
    return job;
  }

  beforeAll(async () => {
    if (!existsSync(BUILT_PAGE)) throw new Error(`${BUILT_PAGE} is missing: run \`npm run build\` before the dashboard tests`);
    mkdirSync(RESULTS, { recursive: true });
    zinc = await startZinc();
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: LAUNCH_ARGS });
    await openContext();
  });

  afterEach(() => {
    const seen = problems.splice(0);
    expect(seen, 'console or page errors').toEqual([]);
  });

  afterAll(async () => {
    await context?.close();
    await browser?.close();
    await stopZinc(zinc);
  });

  it('with no data yet, then each page says what to do', async () => {
    await page.goto(url('/'));
    await page.getByRole('heading', { name: 'No sales yet: upload a CSV in Imports' }).waitFor();
    await eventually(() => page.locator('.health').getAttribute('data-state')).toBe('ok');
    await shot('revenue-empty');
    await page.getByRole('link', { name: 'Go to Imports' }).click();
    await page.getByText('No imports yet: drop a CSV file above.').waitFor();
    await shot('imports-empty');
  });

  it('when a CSV is picked, then its progress ends in success and the history lists it', async () => {
    await gotoImports();
    const content = sampleSales(TODAY, 120);
    await uploadWithPicker('sales-last-120-days.csv', content.csv);
    const job = await finishedJob('success');
    const bar = job.getByRole('progressbar');
    expect(await bar.getAttribute('aria-valuenow')).toBe('100');
    const list = await apiGet<{ imports: Array<{ id: number; filename: string; status: string; num_rows: number }> }>('/api/imports/');
    expect(list.imports[0]).toMatchObject({ filename: 'sales-last-120-days.csv', status: 'success', num_rows: content.rows });
    await eventually(() => job.locator('.job-line').textContent()).toContain(`Imported ${grouped(content.rows)} rows`);
    const row = page.locator(`tr[data-import-id="${list.imports[0]!.id}"]`);
    await row.waitFor();
    expect(await row.locator('.badge').textContent()).toBe('Success');
    await shot('imports-uploaded');
  });

  it('when a range preset is chosen, then the KPI tiles and the top products equal the API', async () => {
    await gotoRevenue();
    await page.getByRole('button', { name: 'Last 30 days' }).click();
    expect(await page.getByRole('button', { name: 'Last 30 days' }).getAttribute('aria-pressed')).toBe('true');
    expect(await page.getByLabel('From', { exact: true }).inputValue()).toBe(daysAgo(29));
    expect(await page.getByLabel('To', { exact: true }).inputValue()).toBe(TODAY);
    const range = `start=${daysAgo(29)}&end=${TODAY}`;
    const totals = await expectTilesToMatch(range);
    expect(cents(totals.total_revenue)).toBeGreaterThan(0n);
    expect(totals.change.total_revenue.percent).not.toBeNull();

    const top = await apiGet<{ products: Array<{ product_id: string; revenue: string }> }>(`/api/metrics/revenue/by-product/?${range}&limit=10`);
    const rows = page.locator('[data-table="top-products"] tbody tr');
    await eventually(() => rows.count()).toBe(top.products.length);
    const shown = await Promise.all(top.products.map((_p, i) => rows.nth(i).getAttribute('data-product')));
    expect(shown).toEqual(top.products.map((p) => p.product_id));
    expect(await rows.first().locator('td').nth(2).textContent()).toBe(sgd(top.products[0]!.revenue));
    await shot('revenue');
    if (process.env.ZINC_DASHBOARD_SCREENSHOT === '1') {
      // The README's picture, with the chart's legend showing one day.
      const over = page.locator('.chart .u-over');
      const box = (await over.boundingBox())!;
      await over.hover({ position: { x: box.width * 0.82, y: box.height / 2 } });
      await eventually(() => page.locator('.chart .u-legend .u-series').first().locator('.u-value').textContent()).toMatch(/^\d+ \w+ \d{4}$/);
      await page.screenshot({ path: path.join(ROOT, 'docs', 'dashboard.png'), fullPage: true });
      await page.mouse.move(0, 0);
    }

    // Other presets ask other ranges.
    await page.getByRole('button', { name: 'Last 7 days' }).click();
    await expectTilesToMatch(`start=${daysAgo(6)}&end=${TODAY}`);
    await page.getByRole('button', { name: 'Last 30 days' }).click();
    await expectTilesToMatch(range);
  });

  it('when the granularity changes, then the chart redraws with the periods of the API', async () => {
    const chart = page.locator('.chart');
    await eventually(() => chart.getAttribute('data-granularity')).toBe('day');
    expect(await chart.getAttribute('data-points')).toBe('30');
    const canvas = () => chart.locator('canvas').screenshot();
    const daily = await canvas();

    // Keyboard: from Day, Tab reaches Week and Enter picks it.
    await page.getByRole('button', { name: 'Day', exact: true }).focus();
    await page.keyboard.press('Tab');
    await page.keyboard.press('Enter');
    await eventually(() => chart.getAttribute('data-granularity')).toBe('week');
    const weeks = await apiGet<{ periods: unknown[] }>(`/api/metrics/revenue/series/?start=${daysAgo(29)}&end=${TODAY}&granularity=week`);
    expect(await chart.getAttribute('data-points')).toBe(String(weeks.periods.length));
    const weekly = await canvas();
    expect(weekly.equals(daily)).toBe(false);

    await page.getByRole('button', { name: 'Month', exact: true }).click();
    await eventually(() => chart.getAttribute('data-granularity')).toBe('month');
    const months = await apiGet<{ periods: unknown[] }>(`/api/metrics/revenue/series/?start=${daysAgo(29)}&end=${TODAY}&granularity=month`);
    expect(await chart.getAttribute('data-points')).toBe(String(months.periods.length));
    expect((await canvas()).equals(weekly)).toBe(false);
    await shot('revenue-monthly');
    await page.getByRole('button', { name: 'Day', exact: true }).click();
    await eventually(() => chart.getAttribute('data-granularity')).toBe('day');
  });

  it('when products are picked, then the tiles show only their sales', async () => {
    const range = `start=${daysAgo(29)}&end=${TODAY}`;
    const top = await apiGet<{ products: Array<{ product_id: string }> }>(`/api/metrics/revenue/by-product/?${range}&limit=2`);
    const [first, second] = top.products.map((p) => p.product_id);
    await page.getByLabel('Products', { exact: true }).fill(first!);
    await page.getByLabel('Products', { exact: true }).press('Enter');
    await expectTilesToMatch(`${range}&product_id=${encodeURIComponent(first!)}`);
    // The table's filter button adds a second product.
    await page.getByRole('button', { name: `Show only ${second}` }).click();
    await expectTilesToMatch(`${range}&product_id=${encodeURIComponent(first!)}&product_id=${encodeURIComponent(second!)}`);
    await shot('revenue-filtered');
    await page.getByRole('button', { name: 'Clear', exact: true }).click();
    await expectTilesToMatch(range);
  });

  it('when a file with bad rows is dropped, then it fails and its row errors open in a table', async () => {
    await gotoImports();
    const bad = [
      'date,order_id,product_id,amount_sgd',
      `${TODAY},BAD-1,SKU-1,12.50`,
      `2024-02-30,BAD-2,SKU-1,3.00`,
      `${TODAY},BAD-3,SKU-2,12.345`,
      `${TODAY},,SKU-3,1.00`,
    ].join('\n');
    await uploadByDrop('broken-export.csv', `${bad}\n`);
    const job = await finishedJob('failed');
    const list = await apiGet<{ imports: Array<{ id: number }> }>('/api/imports/');
    const id = list.imports[0]!.id;
    const detail = await apiGet<{ status: string; errors: Array<{ line: number; column: string | null; message: string }> }>(`/api/imports/${id}`);
    expect(detail.status).toBe('failed');
    expect(detail.errors.length).toBe(3);

    await job.getByRole('button', { name: /Show 3 row errors/ }).click();
    const table = page.locator('[data-table="row-errors"] tbody tr');
    await eventually(() => table.count()).toBe(3);
    const cells = await Promise.all(detail.errors.map((_e, i) => table.nth(i).locator('td').allTextContents()));
    expect(cells).toEqual(detail.errors.map((e) => [String(e.line), e.column ?? 'whole row', e.message]));
    await page.getByRole('button', { name: 'Close', exact: true }).click();

    // The history row opens the same errors.
    const row = page.locator(`tr[data-import-id="${id}"]`);
    expect(await row.locator('.badge').textContent()).toBe('Failed');
    await row.getByRole('button', { name: `Errors of import #${id}` }).click();
    await eventually(() => page.locator('[data-errors-for]').getAttribute('data-errors-for')).toBe(String(id));
    await eventually(() => table.count()).toBe(3);
    await shot('imports-errors');
  });

  it('when an import is undone after confirming, then the revenue drops by its rows', async () => {
    const extra = ['date,order_id,product_id,amount_sgd', ...[1, 2, 3, 4, 5].map((n) => `${daysAgo(n)},UNDO-${n},SKU-UNDO,1000.00`)].join('\n');
    await uploadWithPicker('late-orders.csv', `${extra}\n`);
    await finishedJob('success');
    const id = (await apiGet<{ imports: Array<{ id: number }> }>('/api/imports/')).imports[0]!.id;
    const range = `start=${daysAgo(29)}&end=${TODAY}`;

    await gotoRevenue();
    const before = await expectTilesToMatch(range);

    await gotoImports();
    const row = page.locator(`tr[data-import-id="${id}"]`);
    await row.getByRole('button', { name: `Undo import #${id}` }).click();
    const dialog = page.getByRole('dialog', { name: `Undo import #${id}?` });
    await dialog.waitFor();
    await shot('imports-undo-confirm');
    // Cancel first: nothing changes.
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    await dialog.waitFor({ state: 'detached' });
    expect(await row.locator('.badge').textContent()).toBe('Success');

    await row.getByRole('button', { name: `Undo import #${id}` }).click();
    await dialog.getByRole('button', { name: 'Undo import' }).click();
    await eventually(() => row.locator('.badge').textContent()).toBe('Reverted');
    expect((await apiGet<{ status: string }>(`/api/imports/${id}`)).status).toBe('reverted');

    await gotoRevenue();
    const after = await expectTilesToMatch(range);
    expect(cents(before.total_revenue) - cents(after.total_revenue)).toBe(500_000n);
    expect(before.order_count - after.order_count).toBe(5);
  });

  it('at 360 px wide, then the pages fit without sideways scrolling', async () => {
    await page.setViewportSize({ width: 360, height: 780 });
    try {
      for (const [name, go] of [
        ['revenue', gotoRevenue],
        ['imports', gotoImports],
      ] as const) {
        await go();
        await page.locator('.health[data-state="ok"]').waitFor();
        if (name === 'revenue') await page.locator('.chart canvas').waitFor();
        const width = await page.evaluate('document.documentElement.scrollWidth');
        expect(width, `${name} at 360 px`).toBeLessThanOrEqual(360);
        await shot(`${name}-360px`);
      }
    } finally {
      await page.setViewportSize({ width: 1280, height: 900 });
    }
  });

  describe('with API_TOKEN set', () => {
    let guarded: Running;

    beforeAll(async () => {
      guarded = await startZinc({ apiToken: TOKEN });
      const response = await fetch(`${guarded.server.url}/api/imports/?filename=guarded.csv`, {
        method: 'POST',
        headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'text/csv' },
        body: sampleSales(TODAY, 40).csv,
      });
      expect(response.status).toBe(200);
    });

    afterAll(async () => {
      await stopZinc(guarded);
    });

    it('then the page asks for the token once, sends it, and keeps it for the tab', async () => {
      await context.close();
      await openContext();
      const apiCalls: Array<{ url: string; authorization: string | undefined }> = [];
      page.on('request', (request) => {
        if (new URL(request.url()).pathname.startsWith('/api/')) apiCalls.push({ url: request.url(), authorization: request.headers().authorization });
      });
      await page.goto(`${guarded.server.url}/`);
      await page.getByRole('heading', { name: 'API token needed' }).waitFor();
      // Nothing was asked of the API before the token was there (no 401 to recover from).
      expect(apiCalls).toEqual([]);
      await shot('token-prompt');

      await page.getByLabel('API token', { exact: true }).fill(TOKEN);
      await page.getByLabel('API token', { exact: true }).press('Enter');
      await page.getByRole('heading', { name: 'Revenue', level: 1 }).waitFor();
      await page.getByRole('button', { name: 'Last 30 days' }).click();
      const base = zinc;
      zinc = guarded;
      try {
        await expectTilesToMatch(`start=${daysAgo(29)}&end=${TODAY}`, TOKEN);
      } finally {
        zinc = base;
      }
      expect(apiCalls.length).toBeGreaterThan(0);
      expect(apiCalls.every((call) => call.authorization === `Bearer ${TOKEN}`)).toBe(true);

      // A reload in the same tab does not ask again.
      await page.reload();
      await page.getByRole('heading', { name: 'Revenue', level: 1 }).waitFor();
      await page.locator('[data-kpi="revenue"]').waitFor();
      expect(await page.getByRole('heading', { name: 'API token needed' }).count()).toBe(0);
      await shot('token-accepted');
    });
  });
});
