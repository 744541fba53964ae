import { createHash } from 'node:crypto';
import { grow, PairTable } from './pair-table.js';

/** Cents: a number while exact, a bigint past 2^52. */
export type Cents = number | bigint;

export const isZero = (cents: Cents) => cents === 0 || cents === 0n;

/**
 * The change one write (an import, an undo) makes to the rollup tables, gathered in memory while
 * the rows pass and written in bulk afterwards (rollup-merge.ts). Its size follows the groups —
 * days, (product, day), (basket, day) — never the rows, except for two small things: the lines of
 * orders that carry several dates, and a hash of 8 bytes per order (to find, should a file's order
 * ids not rise, an order whose lines are not side by side).
 *
 * Two kinds of change:
 * - sums (revenue and sale rows per day and per product and day) are additive row by row;
 * - order facts (distinct orders per day, baskets, multi-date orders) belong to an order as a
 *   whole. The stream counts an order from its run of adjacent lines; that is the order's true
 *   contribution only when the order has no other lines anywhere. The import finds the orders for
 *   which that fails (see rollup-merge.ts) and corrects them from `sales`.
 */
export class RollupDelta {
  /** `padSpace`: compare ids as MySQL's utf8mb4_bin does (see idLess); SQLite: false. */
  constructor(private readonly padSpace = false) {}

  private readonly dayIndex = new Map<string, number>();
  private lastDate: string | undefined;
  private lastDay = 0;
  readonly days: string[] = [];
  /** Per day: revenue cents, sale rows, distinct orders (deltas). */
  private dayCents: number[] = [];
  private daySales: number[] = [];
  private dayOrders: number[] = [];

  private readonly productIndex = new Map<string, number>();
  readonly products: string[] = [];
  /** (product, day) slots and their sums. */
  private readonly productDays = new PairTable();
  private slotCents = new Float64Array(1024);
  private slotSales = new Int32Array(1024);
  private basketOrder: Int32Array | undefined;
  /** Slots in key order, once asked for. */
  private slotOrder: Int32Array | undefined;

  private readonly basketIndex = new Map<string, number>();
  /** Per basket: its name (SHA-256 of the length-prefixed, sorted product ids) and its products. */
  /** Per basket its key, and its name's 32 bytes (SHA-256) at 32 × index. */
  private readonly basketKeys: string[] = [];
  private basketDigests = Buffer.alloc(32 * 1024);
  /** (basket, day) slots and their orders. */
  private readonly basketDays = new PairTable();
  private basketOrders = new Int32Array(1024);

  /** Money that outgrew exact doubles (|sum| ≥ 2^52 cents), by slot: days as -1 - day. */
  private readonly overflow = new Map<number, bigint>();

  /** Lines and (order, date, previous date) rows of multi-date orders seen in runs. */
  readonly multidayLines: { orderId: string; productId: string; date: string }[] = [];
  readonly multidayDays: { orderId: string; date: string; prevDate: string | null }[] = [];

  // The run of adjacent lines of one order.
  private runOrder: string | undefined;
  private readonly runDays: number[] = [];
  private readonly runProducts: number[] = [];
  /** Runs counted so far (orders, if no order's lines are split). */
  runs = 0;
  /** Whether every run's order id is greater than the one before (then no order recurs). */
  rising = true;
  private runHashes: Float64Array = new Float64Array(0);
  /** Smallest and largest order id streamed (binary order, as the databases compare them). */
  orderMin: string | undefined;
  orderMax: string | undefined;

  /** Adds a stored row to the sums and to its order's run. */
  addRow(date: string, orderId: string, productId: string, cents: number): void {
    const day = this.day(date);
    const product = this.product(productId);
    this.addDaySums(day, cents, 1);
    this.addProductSums(product, day, cents, 1);
    if (orderId !== this.runOrder) this.startRun(orderId);
    this.runDays.push(day);
    this.runProducts.push(product);
  }

  /** Adds (or with negative counts, removes) summed rows of one (date, product). */
  addSums(date: string, productId: string, cents: number | bigint, count: number): void {
    const day = this.day(date);
    this.addDaySums(day, cents, count);
    this.addProductSums(this.product(productId), day, cents, count);
  }

  /**
   * Adds `count` orders (negative: removes them) holding, on `date`, the products named by
   * `basketKey` (the length-prefixed sorted ids, as SQL's GROUP_CONCAT writes them), or a single
   * product when `basketKey` is null.
   */
  addOrderFacts(date: string, basketKey: string | null, count: number): void {
    const day = this.day(date);
    this.dayOrders[day]! += count;
    if (basketKey !== null) this.addBasketDay(this.basketOf(basketKey), day, count);
  }

  /**
   * Takes away (sign −1) or adds what another delta holds: its sums and its order facts (not its
   * multi-date lines, which the caller handles per order).
   */
  merge(other: RollupDelta, sign: 1 | -1, parts: { sums: boolean; orders: boolean }): void {
    for (let d = 0; d < other.days.length; d++) {
      const day = this.day(other.days[d]!);
      const cents = other.cents(other.dayCents[d]!, -1 - d);
      if (parts.sums) this.addDaySums(day, sign === 1 ? cents : -cents, sign * other.daySales[d]!);
      if (parts.orders) this.dayOrders[day]! += sign * other.dayOrders[d]!;
    }
    if (parts.sums) this.mergeProductSums(other, sign);
    const bd = other.basketDays;
    for (let s = 0; parts.orders && s < bd.size; s++) {
      const orders = other.basketOrders[s]!;
      if (orders !== 0) this.addBasketDay(this.basketOf(other.basketKeys[bd.a[s]!]!), this.day(other.days[bd.b[s]!]!), sign * orders);
    }
  }

  private mergeProductSums(other: RollupDelta, sign: 1 | -1): void {
    const pd = other.productDays;
    for (let s = 0; s < pd.size; s++) {
      const cents = other.cents(other.slotCents[s]!, s);
      const day = this.day(other.days[pd.b[s]!]!);
      this.addProductSums(this.product(other.products[pd.a[s]!]!), day, sign === 1 ? cents : -cents, sign * other.slotSales[s]!);
    }
  }

  /** A basket's name in the tables: the SHA-256 of its key, in hex. */
  basketName(basket: number): string {
    return this.basketDigests.toString('hex', 32 * basket, 32 * basket + 32);
  }

  /** A basket's product ids. */
  basketProducts(basket: number): string[] {
    return splitBasketKey(this.basketKeys[basket]!);
  }

  /** Ends the last run; call once the stream is over, before reading order facts. */
  endRuns(): void {
    this.closeRun();
    this.runOrder = undefined;
  }

  /**
   * Whether two runs may belong to one order: run ids did not rise and two of them hash alike.
   * False means each run is a whole order as far as this file goes.
   */
  runsMayRepeat(): boolean {
    if (this.rising) return false;
    const hashes = this.runHashes.subarray(0, this.runs).sort();
    for (let i = 1; i < hashes.length; i++) if (hashes[i] === hashes[i - 1]) return true;
    return false;
  }

  /** Forgets the order facts counted from runs (the caller recomputes them from `sales`). */
  dropOrderFacts(): void {
    this.dayOrders.fill(0);
    this.basketOrders.fill(0);
    this.multidayLines.length = 0;
    this.multidayDays.length = 0;
  }

  /** Forgets the sums (the caller recomputes them from `sales`). */
  dropSums(): void {
    this.dayCents.fill(0);
    this.daySales.fill(0);
    this.slotCents.fill(0);
    this.slotSales.fill(0);
    for (const key of [...this.overflow.keys()]) this.overflow.delete(key);
  }

  /** Every day with a change: date, revenue (cents), sale rows, orders. */
  *dayChanges(): Generator<{ date: string; cents: Cents; sales: number; orders: number }> {
    for (let d = 0; d < this.days.length; d++) {
      const cents = this.cents(this.dayCents[d]!, -1 - d);
      if (isZero(cents) && this.daySales[d] === 0 && this.dayOrders[d] === 0) continue;
      yield { date: this.days[d]!, cents, sales: this.daySales[d]!, orders: this.dayOrders[d]! };
    }
  }

  /** Every (product, day) with a change, in key order (product id, then date): B-trees fill in order. */
  *productDayChanges(): Generator<{ productId: string; date: string; cents: Cents; sales: number }> {
    const table = this.productDays;
    if (this.slotOrder === undefined || this.slotOrder.length !== table.size) {
      this.slotOrder = keyOrder(table, ranks(this.products), ranks(this.days));
    }
    for (const s of this.slotOrder) {
      const cents = this.cents(this.slotCents[s]!, s);
      if (isZero(cents) && this.slotSales[s] === 0) continue;
      yield { productId: this.products[table.a[s]!]!, date: this.days[table.b[s]!]!, cents, sales: this.slotSales[s]! };
    }
  }

  /** Every (basket, day) with a change, in key order (basket name, then date). */
  *basketDayChanges(): Generator<{ basket: number; date: string; orders: number }> {
    const table = this.basketDays;
    if (this.basketOrder === undefined || this.basketOrder.length !== table.size) {
      const digests = this.basketDigests;
      const names = Array.from(this.basketKeys.keys()).sort((x, y) => digests.compare(digests, 32 * y, 32 * y + 32, 32 * x, 32 * x + 32));
      const nameRank = new Array<number>(names.length);
      names.forEach((basket, r) => (nameRank[basket] = r));
      this.basketOrder = keyOrder(table, nameRank, ranks(this.days));
    }
    const order = this.basketOrder;
    for (const s of order) {
      const orders = this.basketOrders[s]!;
      if (orders !== 0) yield { basket: table.a[s]!, date: this.days[table.b[s]!]!, orders };
    }
  }

  private day(date: string): number {
    // Exports come in date order: most rows have the date of the row before.
    if (date === this.lastDate) return this.lastDay;
    let d = this.dayIndex.get(date);
    if (d === undefined) {
      d = this.days.length;
      if (d >= DAY_SPAN) throw new Error('too many distinct dates in one change');
      this.dayIndex.set(date, d);
      this.days.push(date);
      this.dayCents.push(0);
      this.daySales.push(0);
      this.dayOrders.push(0);
    }
    this.lastDate = date;
    this.lastDay = d;
    return d;
  }

  private product(productId: string): number {
    let p = this.productIndex.get(productId);
    if (p === undefined) {
      p = this.products.length;
      this.productIndex.set(productId, p);
      this.products.push(productId);
    }
    return p;
  }

  private addDaySums(day: number, cents: number | bigint, count: number): void {
    this.daySales[day]! += count;
    this.dayCents[day] = this.addCents(this.dayCents[day]!, cents, -1 - day);
  }

  private addProductSums(product: number, day: number, cents: number | bigint, count: number): void {
    const slot = this.productDays.slot(product, day);
    if (slot >= this.slotSales.length) {
      this.slotSales = grow(this.slotSales, this.slotSales.length * 2);
      this.slotCents = grow(this.slotCents, this.slotCents.length * 2);
    }
    this.slotSales[slot]! += count;
    this.slotCents[slot] = this.addCents(this.slotCents[slot]!, cents, slot);
  }

  /** Adds cents exactly: a sum that would leave the exact range of doubles moves to a bigint. */
  private addCents(sum: number, cents: number | bigint, slot: number): number {
    if (typeof cents === 'number') {
      const next = sum + cents;
      if (next < EXACT && next > -EXACT) return next;
    }
    this.overflow.set(slot, (this.overflow.get(slot) ?? 0n) + BigInt(sum) + BigInt(cents));
    return 0;
  }

  private cents(sum: number, slot: number): Cents {
    const spilled = this.overflow.get(slot);
    return spilled === undefined ? sum : spilled + BigInt(sum);
  }

  private addBasketDay(basket: number, day: number, count: number): void {
    const slot = this.basketDays.slot(basket, day);
    if (slot >= this.basketOrders.length) this.basketOrders = grow(this.basketOrders, this.basketOrders.length * 2);
    this.basketOrders[slot]! += count;
  }

  /** The basket index of a key (`5:SKU-15:SKU-2`…), naming it on first sight. */
  private basketOf(key: string): number {
    let b = this.basketIndex.get(key);
    if (b === undefined) {
      b = this.basketKeys.length;
      this.basketIndex.set(key, b);
      this.basketKeys.push(key);
      if (32 * (b + 1) > this.basketDigests.length) {
        const grown = Buffer.alloc(this.basketDigests.length * 2);
        this.basketDigests.copy(grown);
        this.basketDigests = grown;
      }
      createHash('sha256').update(key, 'utf8').digest().copy(this.basketDigests, 32 * b);
    }
    return b;
  }

  private startRun(orderId: string): void {
    this.closeRun();
    const previous = this.runOrder;
    this.runOrder = orderId;
    if (this.runs >= this.runHashes.length) {
      const grown = new Float64Array(Math.max(1024, this.runHashes.length * 2));
      grown.set(this.runHashes);
      this.runHashes = grown;
    }
    this.runHashes[this.runs++] = hashId(orderId);
    const pad = this.padSpace;
    if (previous !== undefined && this.rising && !idLess(previous, orderId, pad)) this.rising = false;
    if (this.orderMin === undefined || idLess(orderId, this.orderMin, pad)) this.orderMin = orderId;
    if (this.orderMax === undefined || idLess(this.orderMax, orderId, pad)) this.orderMax = orderId;
  }

  /** Counts the finished run as one order: its days, its baskets, its lines if it spans days. */
  private closeRun(): void {
    const days = this.runDays;
    const n = days.length;
    if (n === 0) return;
    const products = this.runProducts;
    let single = true;
    for (let i = 1; i < n; i++) if (days[i] !== days[0]) single = false;
    if (single) {
      this.dayOrders[days[0]!]! += 1;
      if (n > 1) {
        const ids: string[] = [];
        for (let i = 0; i < n; i++) ids.push(this.products[products[i]!]!);
        this.addBasketDay(this.basketOf(basketKey(ids, this.padSpace)), days[0]!, 1);
      }
    } else {
      const byDay = new Map<number, string[]>();
      for (let i = 0; i < n; i++) {
        const list = byDay.get(days[i]!);
        if (list) list.push(this.products[products[i]!]!);
        else byDay.set(days[i]!, [this.products[products[i]!]!]);
      }
      const orderId = this.runOrder!;
      const dates = [...byDay.keys()].map((d) => this.days[d]!).sort();
      for (let i = 0; i < dates.length; i++) {
        this.multidayDays.push({ orderId, date: dates[i]!, prevDate: i === 0 ? null : dates[i - 1]! });
      }
      for (const [day, ids] of byDay) {
        this.dayOrders[day]! += 1;
        if (ids.length > 1) this.addBasketDay(this.basketOf(basketKey(ids, this.padSpace)), day, 1);
        for (const productId of ids) this.multidayLines.push({ orderId, productId, date: this.days[day]! });
      }
    }
    days.length = 0;
    products.length = 0;
  }
}

/** The slots of a pair table sorted by their pairs' ranks. */
function keyOrder(table: PairTable, rankA: number[], rankB: number[]): Int32Array {
  const keys = new Float64Array(table.size);
  for (let s = 0; s < table.size; s++) keys[s] = rankA[table.a[s]!]! * DAY_SPAN + rankB[table.b[s]!]!;
  const order = new Int32Array(table.size);
  for (let s = 0; s < order.length; s++) order[s] = s;
  return order.sort((x, y) => keys[x]! - keys[y]!);
}

/** Each string's rank in binary (code point) order. */
function ranks(values: string[]): number[] {
  const order = Array.from(values.keys()).sort((a, b) => compareIds(values[a]!, values[b]!));
  const rank = new Array<number>(values.length);
  order.forEach((index, r) => (rank[index] = r));
  return rank;
}

/** Distinct dates one change may touch (years 1000–9999 have about 3.3 million). */
const DAY_SPAN = 1 << 22;
/** Cents sums stay exact as doubles below this; beyond it they move to a bigint. */
const EXACT = 2 ** 52;

/** Where the databases sort one character after another: code point order, as UTF-8 bytes compare. */
function codePointRank(c: number): number {
  return c >= 0xe000 ? c - 0x800 : c >= 0xd800 ? c + 0x2000 : c;
}

/**
 * a < b in binary (code point) order, as SQLite's BINARY compares; with `padSpace`, as MySQL's
 * utf8mb4_bin does: the shorter string compares as if padded with spaces ('A' > 'A\u0001').
 */
export function idLess(a: string, b: string, padSpace = false): boolean {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x !== y) return codePointRank(x) < codePointRank(y);
  }
  if (!padSpace || a.length === b.length) return a.length < b.length;
  const longer = a.length > b.length ? a : b;
  for (let i = n; i < longer.length; i++) {
    const c = longer.charCodeAt(i);
    if (c !== 32) return (c < 32) === (longer === a);
  }
  return false;
}

function compareIds(a: string, b: string, padSpace = false): number {
  return a === b ? 0 : idLess(a, b, padSpace) ? -1 : idLess(b, a, padSpace) ? 1 : 0;
}

/** Characters (code points), as CHAR_LENGTH and SQLite's length() count them. */
function charLength(text: string): number {
  let n = text.length;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff) n--;
  }
  return n;
}

/**
 * A basket's key: its product ids sorted as the database sorts them (`padSpace`: MySQL), each
 * prefixed by its length, so no two sets give one key; the same string GROUP_CONCAT writes.
 */
export function basketKey(productIds: string[], padSpace = false): string {
  productIds.sort((a, b) => compareIds(a, b, padSpace));
  let key = '';
  for (const id of productIds) key += `${charLength(id)}:${id}`;
  return key;
}

/** A basket's name in the tables: the SHA-256 of its key, as SHA2(…, 256) gives it. */
export function basketName(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex');
}

/** The product ids of a basket key. */
export function splitBasketKey(key: string): string[] {
  const ids: string[] = [];
  let i = 0;
  while (i < key.length) {
    const colon = key.indexOf(':', i);
    const chars = Number(key.slice(i, colon));
    let end = colon + 1;
    for (let c = 0; c < chars; c++) end += key.charCodeAt(end) >= 0xd800 && key.charCodeAt(end) <= 0xdbff ? 2 : 1;
    ids.push(key.slice(colon + 1, end));
    i = end;
  }
  return ids;
}

/** A 53-bit hash of an order id (two FNV-1a variants): equal ids hash alike, others almost never. */
function hashId(id: string): number {
  let a = 0x811c9dc5;
  let b = 0x9747b28c;
  for (let i = 0; i < id.length; i++) {
    const c = id.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193);
    b = Math.imul(b ^ c, 0x5bd1e995);
    b ^= b >>> 13;
  }
  return (a >>> 0) * 2097152 + ((b >>> 0) & 0x1fffff);
}
