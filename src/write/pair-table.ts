/**
 * A map from pairs of small non-negative integers (a product and a day, a basket and a day) to
 * slots numbered 0, 1, 2… in order of first sight, in typed arrays: about 20 bytes a pair,
 * where a Map of Maps costs several times that. Open addressing with linear probing.
 */
export class PairTable {
  private keysA = new Int32Array(1024).fill(-1);
  private keysB = new Int32Array(1024);
  private slots = new Int32Array(1024);
  private mask = 1023;
  /** Pairs held; slots run from 0 to size − 1. */
  size = 0;
  /** Per slot, its pair. */
  a = new Int32Array(1024);
  b = new Int32Array(1024);

  /** The slot of (a, b), made on first sight. */
  slot(a: number, b: number): number {
    let i = hash(a, b) & this.mask;
    for (;;) {
      const k = this.keysA[i]!;
      if (k === -1) break;
      if (k === a && this.keysB[i] === b) return this.slots[i]!;
      i = (i + 1) & this.mask;
    }
    const slot = this.size++;
    this.keysA[i] = a;
    this.keysB[i] = b;
    this.slots[i] = slot;
    if (slot >= this.a.length) {
      this.a = grow(this.a, this.a.length * 2);
      this.b = grow(this.b, this.b.length * 2);
    }
    this.a[slot] = a;
    this.b[slot] = b;
    if (this.size * 2 > this.mask) this.rehash();
    return slot;
  }

  private rehash(): void {
    const capacity = (this.mask + 1) * 2;
    this.keysA = new Int32Array(capacity).fill(-1);
    this.keysB = new Int32Array(capacity);
    this.slots = new Int32Array(capacity);
    this.mask = capacity - 1;
    for (let s = 0; s < this.size; s++) {
      let i = hash(this.a[s]!, this.b[s]!) & this.mask;
      while (this.keysA[i] !== -1) i = (i + 1) & this.mask;
      this.keysA[i] = this.a[s]!;
      this.keysB[i] = this.b[s]!;
      this.slots[i] = s;
    }
  }
}

function hash(a: number, b: number): number {
  let h = Math.imul(a, 0x9e3779b1) ^ Math.imul(b + 0x7f4a7c15, 0x85ebca6b);
  h ^= h >>> 15;
  return Math.imul(h, 0xc2b2ae35) ^ (h >>> 13);
}

/** A typed array with room for `length` elements, keeping its contents. */
export function grow<T extends Int32Array | Float64Array>(array: T, length: number): T {
  const next = new (array.constructor as new (n: number) => T)(length);
  next.set(array);
  return next;
}
