/** Cuts `whole` (text or bytes) at the given offsets (taken modulo its length + 1), in order. */
export function splitAt<T extends { slice(a: number, b?: number): T; length: number }>(whole: T, cuts: readonly number[]): T[] {
  const offsets = [...new Set(cuts.map((c) => c % (whole.length + 1)))].sort((a, b) => a - b);
  const parts: T[] = [];
  let from = 0;
  for (const at of offsets) {
    parts.push(whole.slice(from, at));
    from = at;
  }
  parts.push(whole.slice(from));
  return parts;
}
