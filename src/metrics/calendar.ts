/** Calendar arithmetic on `YYYY-MM-DD` strings, in UTC so no time zone ever shifts a day. */

const DAY_MS = 86_400_000;

export function toDayNumber(date: string): number {
  return Date.parse(`${date}T00:00:00Z`) / DAY_MS;
}

export function fromDayNumber(day: number): string {
  return new Date(day * DAY_MS).toISOString().slice(0, 10);
}

/** Number of calendar days in [start, end], both inclusive. */
export function daysInclusive(start: string, end: string): number {
  return toDayNumber(end) - toDayNumber(start) + 1;
}

/** Every date from start to end inclusive, ascending. */
export function eachDay(start: string, end: string): string[] {
  const first = toDayNumber(start);
  const count = toDayNumber(end) - first + 1;
  return Array.from({ length: Math.max(0, count) }, (_, i) => fromDayNumber(first + i));
}
