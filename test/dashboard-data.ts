/**
 * Sales that look like a small shop's, for the dashboard tests and the README picture: orders of
 * one to three products every day up to `end`, busier at weekends and slowly growing, with the
 * odd refund. The same arguments always give the same file.
 */

const PRODUCTS: Array<{ id: string; price: number; weight: number }> = [
  { id: 'SKU-1001', price: 12.9, weight: 18 },
  { id: 'SKU-1002', price: 24.5, weight: 14 },
  { id: 'SKU-1003', price: 7.8, weight: 22 },
  { id: 'SKU-1004', price: 89.0, weight: 6 },
  { id: 'SKU-1005', price: 45.0, weight: 9 },
  { id: 'SKU-1006', price: 149.0, weight: 3 },
  { id: 'SKU-1007', price: 19.99, weight: 12 },
  { id: 'SKU-1008', price: 5.49, weight: 16 },
  { id: 'SKU-1009', price: 64.9, weight: 5 },
  { id: 'SKU-1010', price: 32.0, weight: 8 },
  { id: 'SKU-1011', price: 259.0, weight: 1.5 },
  { id: 'SKU-1012', price: 3.2, weight: 10 },
];
const TOTAL_WEIGHT = PRODUCTS.reduce((sum, p) => sum + p.weight, 0);

/** mulberry32: a small seeded PRNG. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

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
  const next = random(seed);
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
        const cents = Math.round(product.price * 100) * quantity * refund;
        lines.push(`${date},${id},${product.id},${(cents / 100).toFixed(2)}`);
      }
    }
  }
  return { csv: `${lines.join('\n')}\n`, rows: lines.length - 1 };
}
