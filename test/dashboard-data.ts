/**
 * Sales that look like a small shop's, for the dashboard tests and the README picture: orders of
 * one to three products every day up to `end`, busier at weekends and slowly growing, with the
 * odd refund. The same arguments always give the same file.
 */
import { formatCents } from '../src/money.js';
import { prng } from '../bench/sales-generator.js';

const PRODUCTS: Array<{ id: string; priceCents: number; weight: number }> = [
  { id: 'SKU-1001', priceCents: 1290, weight: 18 },
  { id: 'SKU-1002', priceCents: 2450, weight: 14 },
  { id: 'SKU-1003', priceCents: 780, weight: 22 },
  { id: 'SKU-1004', priceCents: 8900, weight: 6 },
  { id: 'SKU-1005', priceCents: 4500, weight: 9 },
  { id: 'SKU-1006', priceCents: 14900, weight: 3 },
  { id: 'SKU-1007', priceCents: 1999, weight: 12 },
  { id: 'SKU-1008', priceCents: 549, weight: 16 },
  { id: 'SKU-1009', priceCents: 6490, weight: 5 },
  { id: 'SKU-1010', priceCents: 3200, weight: 8 },
  { id: 'SKU-1011', priceCents: 25900, weight: 1.5 },
  { id: 'SKU-1012', priceCents: 320, weight: 10 },
];
const TOTAL_WEIGHT = PRODUCTS.reduce((sum, p) => sum + p.weight, 0);

function pick(next: () => number): (typeof PRODUCTS)[number] {
  let at = next() * TOTAL_WEIGHT;
  for (const product of PRODUCTS) {
    at -= product.weight;
    if (at < 0) return product;
  }
  return PRODUCTS[PRODUCTS.length - 1]!;
}

/** `days` days of sales ending on `end` (YYYY-MM-DD): the CSV text and its row count. */
export function sampleSales(end: string, days: number, seed = 7): { csv: string; rows: number } {
  const next = prng(seed);
  const lines = ['date,order_id,product_id,amount_sgd'];
  const last = Date.parse(`${end}T00:00:00Z`);
  let order = 0;
  for (let back = days - 1; back >= 0; back -= 1) {
    const day = new Date(last - back * 86_400_000);
    const date = day.toISOString().slice(0, 10);
    const weekend = day.getUTCDay() === 0 || day.getUTCDay() === 6;
    const growth = 1 + (days - back) / (days * 1.5);
    const orders = Math.round((18 + next() * 14) * (weekend ? 1.45 : 1) * growth);
    for (let o = 0; o < orders; o += 1) {
      order += 1;
      const id = `SO-${end.replaceAll('-', '')}-${String(order).padStart(5, '0')}`;
      const seen = new Set<string>();
      const count = 1 + Math.floor(next() * next() * 3);
      for (let l = 0; l < count; l += 1) {
        const product = pick(next);
        if (seen.has(product.id)) continue;
        seen.add(product.id);
        const quantity = 1 + Math.floor(next() * next() * 4);
        const refund = next() < 0.015 ? -1 : 1;
        const cents = product.priceCents * quantity * refund;
        lines.push(`${date},${id},${product.id},${formatCents(cents)}`);
      }
    }
  }
  return { csv: `${lines.join('\n')}\n`, rows: lines.length - 1 };
}
