import { createWriteStream } from 'node:fs';
import { once } from 'node:events';

/** A small, fast, seeded PRNG (mulberry32): the same seed gives the same file on every machine. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const FIRST_DAY = Date.UTC(2022, 0, 1) / 86_400_000;
const DAYS = 3 * 365 + 1;

export interface GenerateOptions {
  rows: number;
  seed?: number;
  /** Order ids start here (so two generated files can overlap or not). */
  firstOrder?: number;
}

/**
 * Writes a deterministic sales CSV: dates over three years (2022–2024), 1–3 lines per order,
 * 500 products, amounts 0.50–999.99 SGD with about 2% refunds. Returns the exact total in cents.
 */
export async function generateSalesCsv(file: string, options: GenerateOptions): Promise<{ totalCents: bigint; orders: number }> {
  const random = prng(options.seed ?? 42);
  const out = createWriteStream(file, { highWaterMark: 1 << 20 });
  out.write('date,order_id,product_id,amount_sgd\n');
  let written = 0;
  let order = options.firstOrder ?? 1;
  let totalCents = 0n;
  let orders = 0;
  let chunk = '';
  while (written < options.rows) {
    const lines = Math.min(1 + Math.floor(random() * 3), options.rows - written);
    const date = new Date((FIRST_DAY + Math.floor(random() * DAYS)) * 86_400_000).toISOString().slice(0, 10);
    const orderId = `ORD-${order++}`;
    orders++;
    const first = Math.floor(random() * 500);
    for (let i = 0; i < lines; i++) {
      let cents = 50 + Math.floor(random() * 99_950);
      if (random() < 0.02) cents = -cents;
      totalCents += BigInt(cents);
      const abs = Math.abs(cents);
      chunk += `${date},${orderId},SKU-${((first + i * 7) % 500) + 1},${cents < 0 ? '-' : ''}${Math.floor(abs / 100)}.${String(abs % 100).padStart(2, '0')}\n`;
    }
    written += lines;
    if (chunk.length > 1 << 16) {
      if (!out.write(chunk)) await once(out, 'drain');
      chunk = '';
    }
  }
  out.write(chunk);
  out.end();
  await once(out, 'finish');
  return { totalCents, orders };
}
