/**
 * What "a consistent answer" means under load (bench/load.ts, bench:scale, test/scale-out.test.ts):
 * files generated here, so every state a writer commits is known exactly — each identity holds
 * the value of the latest import still active that carries it — and the questions readers ask,
 * each reducing its answer to what a committed state must match. An answer that matches no
 * committed state (half a file, a mix of two) is inconsistent.
 */
import { formatCents } from '../src/money.js';
import { prng } from './sales-generator.js';

export interface Line {
  date: string;
  order: string;
  product: string;
  cents: number;
}

export interface SalesFile {
  name: string;
  text: string;
  /** identity (order \u0001 product) → line */
  lines: Map<string, Line>;
}

/**
 * `count` files; file f carries orders [f·orders/2, f·orders/2 + orders): each overlaps the next
 * by half, so an import replaces rows of the one before. An order has 1 or 2 lines; an
 * identity's product is the same in every file, its date (in 2024) and amount are not.
 */
export function generateFiles({ count, orders, seed, prefix = 'load' }: { count: number; orders: number; seed: number; prefix?: string }): SalesFile[] {
  return Array.from({ length: count }, (_, f) => {
    const random = prng(seed * 1000 + f);
    const lines = new Map<string, Line>();
    let text = 'date,order_id,product_id,amount_sgd\n';
    const first = (f * orders) / 2;
    for (let j = first; j < first + orders; j++) {
      const date = new Date(Date.UTC(2024, 0, 1 + Math.floor(random() * 366))).toISOString().slice(0, 10);
      for (let l = 0; l < 1 + (j % 2); l++) {
        const order = `${prefix.toUpperCase()}-${j}`;
        const product = `SKU-${(j * 7 + l * 13) % 97}`;
        let cents = 1 + Math.floor(random() * 50_000);
        if (random() < 0.03) cents = -cents;
        lines.set(`${order}\u0001${product}`, { date, order, product, cents });
        text += `${date},${order},${product},${formatCents(cents)}\n`;
      }
    }
    return { name: `${prefix}-${f}.csv`, text, lines };
  });
}

export interface State {
  total: string;
  sales: number;
  orders: number;
}

/** What the database holds when `active` (oldest first) are the imports in effect. */
export function stateOf(active: SalesFile[]): State {
  const current = new Map<string, Line>();
  for (const file of active) for (const [key, line] of file.lines) current.set(key, line);
  let total = 0n;
  const orders = new Set<string>();
  for (const line of current.values()) {
    total += BigInt(line.cents);
    orders.add(line.order);
  }
  return { total: formatCents(total), sales: current.size, orders: orders.size };
}

/** Observations by kind: a full state (total|sales|orders), a total with its sales, or a total alone. */
export interface Seen {
  full: Map<string, number>;
  totalSales: Map<string, number>;
  total: Map<string, number>;
}

export const newSeen = (): Seen => ({ full: new Map(), totalSales: new Map(), total: new Map() });

const count = (m: Map<string, number>, key: string) => m.set(key, (m.get(key) ?? 0) + 1);

export interface Question {
  url: string;
  record(body: unknown, seen: Seen): void;
}

/** Metrics questions over the files' dates (all of 2024), each reduced to what a state must match. */
export const QUESTIONS: Question[] = [
  {
    url: '/api/metrics/revenue',
    record: (b, seen) => {
      const r = b as { total_revenue: string; sale_count: number; order_count: number };
      count(seen.full, `${r.total_revenue}|${r.sale_count}|${r.order_count}`);
    },
  },
  {
    url: '/api/metrics/revenue?start=2024-01-01&end=2024-12-31',
    record: (b, seen) => {
      const r = b as { total_revenue: string; sale_count: number; order_count: number };
      count(seen.full, `${r.total_revenue}|${r.sale_count}|${r.order_count}`);
    },
  },
  {
    url: '/api/metrics/revenue/series?start=2024-01-01&end=2024-12-31&granularity=month',
    record: (b, seen) => {
      const r = b as { periods: Array<{ revenue: string; sale_count: number }> };
      const cents = r.periods.reduce((sum, p) => sum + BigInt(p.revenue.replace('.', '')), 0n);
      const sales = r.periods.reduce((sum, p) => sum + p.sale_count, 0);
      count(seen.totalSales, `${formatCents(cents)}|${sales}`);
    },
  },
  {
    url: '/api/metrics/revenue/by-product?start=2024-01-01&end=2024-12-31&limit=5',
    record: (b, seen) => count(seen.total, (b as { total_revenue: string }).total_revenue),
  },
  {
    url: '/api/metrics/revenue/daily?start=2024-01-01&end=2024-12-31',
    record: (b, seen) => {
      const r = b as { days: Array<{ revenue: string; sale_count: number }> };
      const cents = r.days.reduce((sum, d) => sum + BigInt(d.revenue.replace('.', '')), 0n);
      const sales = r.days.reduce((sum, d) => sum + d.sale_count, 0);
      count(seen.totalSales, `${formatCents(cents)}|${sales}`);
    },
  },
];

/** Every observation that is not of one of the committed `states`, described. */
export function inconsistencies(seen: Seen, states: State[]): string[] {
  const full = new Set(states.map((s) => `${s.total}|${s.sales}|${s.orders}`));
  const totalSales = new Set(states.map((s) => `${s.total}|${s.sales}`));
  const totals = new Set(states.map((s) => s.total));
  const found: string[] = [];
  for (const [key, n] of seen.full) if (!full.has(key)) found.push(`totals ${key} (seen ${n}×)`);
  for (const [key, n] of seen.totalSales) if (!totalSales.has(key)) found.push(`series sum ${key} (seen ${n}×)`);
  for (const [key, n] of seen.total) if (!totals.has(key)) found.push(`total ${key} (seen ${n}×)`);
  return found;
}

/** How many observations there were in all. */
export const observations = (seen: Seen): number =>
  [seen.full, seen.totalSales, seen.total].reduce((n, m) => n + [...m.values()].reduce((a, b) => a + b, 0), 0);
