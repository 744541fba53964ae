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

/**
 * What a generated file looks like. Import speed depends on it (the order rows reach the
 * indexes, how many days and baskets the rollups see), so the benchmarks name the one they ran.
 *
 * - `chronological`: a shop's export. Dates never decrease down the file, order ids rise with
 *   them and are zero-padded (`ORD-00000001`), so both arrive in index order; 500 products.
 * - `random`: every order's date drawn at random and unpadded order ids (`ORD-1`), whose text
 *   order is not their numeric order; 500 products. The files of the first benchmarks: with
 *   the same seed it writes the same bytes as then.
 * - `wide`: a wide catalogue (30,000 products) over one year, chronological, 1–4 distinct
 *   products an order drawn independently, so nearly every multi-line order is a basket of its
 *   own (the basket rollups' worst case).
 */
export type SalesShape = 'chronological' | 'random' | 'wide';
export const SALES_SHAPES: readonly SalesShape[] = ['chronological', 'random', 'wide'];

interface ShapeSpec {
  products: number;
  maxLines: number;
  /** First and last date, inclusive. */
  from: string;
  to: string;
}

const SHAPES: Record<SalesShape, ShapeSpec> = {
  chronological: { products: 500, maxLines: 3, from: '2022-01-01', to: '2024-12-31' },
  random: { products: 500, maxLines: 3, from: '2022-01-01', to: '2024-12-31' },
  wide: { products: 30_000, maxLines: 4, from: '2024-01-01', to: '2024-12-31' },
};

/** The product count a shape uses unless told otherwise. */
export function defaultProducts(shape: SalesShape): number {
  return SHAPES[shape].products;
}

export function isSalesShape(value: string): value is SalesShape {
  return (SALES_SHAPES as readonly string[]).includes(value);
}

export interface GenerateOptions {
  rows: number;
  seed?: number;
  /** Order ids start here (so two generated files can overlap or not). */
  firstOrder?: number;
  /** Default `chronological`. */
  shape?: SalesShape;
  /** Overrides the shape's product count. */
  products?: number;
  /** Field delimiter (default `,`); with `;` or tab, `decimalComma` writes amounts as `12,50`. */
  delimiter?: ',' | ';' | '\t';
  decimalComma?: boolean;
}

const DAY_MS = 86_400_000;
const dayNumber = (iso: string) => Date.parse(`${iso}T00:00:00Z`) / DAY_MS;
const isoDate = (day: number) => new Date(day * DAY_MS).toISOString().slice(0, 10);

function amount(cents: number): string {
  const abs = Math.abs(cents);
  return `${cents < 0 ? '-' : ''}${Math.floor(abs / 100)}.${String(abs % 100).padStart(2, '0')}`;
}

/**
 * Writes a deterministic sales CSV of the given shape (see SalesShape): amounts 0.50–999.99 SGD
 * with about 2% refunds. Returns the exact total in cents and the number of orders.
 */
export async function generateSalesCsv(file: string, options: GenerateOptions): Promise<{ totalCents: bigint; orders: number }> {
  const shape = options.shape ?? 'chronological';
  const spec = SHAPES[shape];
  const products = options.products ?? spec.products;
  if (!Number.isInteger(products) || products < spec.maxLines) {
    throw new RangeError(`products must be a whole number of at least ${spec.maxLines} for the ${shape} shape (got ${products})`);
  }
  // 500 products and more as before: an order's k lines are products n, n+7, n+14, so the same
  // few baskets recur, as in a shop whose products are bought together. A stride dividing the
  // catalogue would repeat a product within an order.
  const stride = 14 % products === 0 ? 1 : 7;
  const firstDay = dayNumber(spec.from);
  const days = dayNumber(spec.to) - firstDay + 1;
  const productWidth = Math.max(4, String(products).length);
  const productId =
    shape === 'random' ? (n: number) => `SKU-${n + 1}` : (n: number) => `P${String(n + 1).padStart(productWidth, '0')}`;
  const orderId = shape === 'random' ? (n: number) => `ORD-${n}` : (n: number) => `ORD-${String(n).padStart(8, '0')}`;

  const random = prng(options.seed ?? 42);
  const out = createWriteStream(file, { highWaterMark: 1 << 20 });
  const sep = options.delimiter ?? ',';
  const money = options.decimalComma ? (cents: number) => amount(cents).replace('.', ',') : amount;
  out.write(['date', 'order_id', 'product_id', 'amount_sgd'].join(sep) + '\n');
  let written = 0;
  let order = options.firstOrder ?? 1;
  let totalCents = 0n;
  let orders = 0;
  let chunk = '';
  const picked: number[] = [];
  while (written < options.rows) {
    const lines = Math.min(1 + Math.floor(random() * spec.maxLines), options.rows - written);
    // Chronological shapes spread the rows evenly over the days, in file order.
    const date = isoDate(
      firstDay + (shape === 'random' ? Math.floor(random() * days) : Math.floor((written * days) / options.rows)),
    );
    const id = orderId(order++);
    orders++;
    picked.length = 0;
    if (shape === 'wide') {
      while (picked.length < lines) {
        const p = Math.floor(random() * products);
        if (!picked.includes(p)) picked.push(p);
      }
    } else {
      const first = Math.floor(random() * products);
      for (let i = 0; i < lines; i++) picked.push((first + i * stride) % products);
    }
    for (const p of picked) {
      let cents = 50 + Math.floor(random() * 99_950);
      if (random() < 0.02) cents = -cents;
      totalCents += BigInt(cents);
      chunk += `${date}${sep}${id}${sep}${productId(p)}${sep}${money(cents)}\n`;
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
