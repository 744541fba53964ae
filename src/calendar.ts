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

/** Every date from start to end inclusive, ascending (string arithmetic: no Date per day). */
export function eachDay(start: string, end: string): string[] {
  const days: string[] = [];
  if (start > end) return days;
  let year = Number(start.slice(0, 4));
  let month = Number(start.slice(5, 7));
  let day = Number(start.slice(8, 10));
  let monthText = `${start.slice(0, 8)}`;
  let length = daysInMonth(year, month);
  for (;;) {
    const date = `${monthText}${day < 10 ? '0' : ''}${day}`;
    days.push(date);
    if (date >= end) return days;
    if (++day > length) {
      day = 1;
      if (++month > 12) {
        month = 1;
        year++;
      }
      monthText = `${String(year).padStart(4, '0')}-${month < 10 ? '0' : ''}${month}-`;
      length = daysInMonth(year, month);
    }
  }
}

function daysInMonth(year: number, month: number): number {
  if (month === 2) return year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0) ? 29 : 28;
  return month === 4 || month === 6 || month === 9 || month === 11 ? 30 : 31;
}

/** The periods a revenue series can be cut into. Weeks are ISO weeks, starting on Monday. */
export const GRANULARITIES = ['day', 'week', 'month', 'quarter', 'year'] as const;
export type Granularity = (typeof GRANULARITIES)[number];

/** The first day of the period of `granularity` that contains `date`. */
export function periodStart(date: string, granularity: Granularity): string {
  switch (granularity) {
    case 'day':
      return date;
    case 'week': {
      const day = toDayNumber(date);
      // Day 0 (1970-01-01) was a Thursday: (day + 3) mod 7 counts days since Monday.
      return fromDayNumber(day - (((day + 3) % 7) + 7) % 7);
    }
    case 'month':
      return `${date.slice(0, 8)}01`;
    case 'quarter': {
      const month = Number(date.slice(5, 7));
      return `${date.slice(0, 5)}${String(month - ((month - 1) % 3)).padStart(2, '0')}-01`;
    }
    case 'year':
      return `${date.slice(0, 4)}-01-01`;
  }
}

/** The first day of the period after the one starting on `start` (a period start). */
export function nextPeriodStart(start: string, granularity: Granularity): string {
  switch (granularity) {
    case 'day':
      return fromDayNumber(toDayNumber(start) + 1);
    case 'week':
      return fromDayNumber(toDayNumber(start) + 7);
    case 'month':
      return addMonths(start, 1);
    case 'quarter':
      return addMonths(start, 3);
    case 'year':
      return addMonths(start, 12);
  }
}

/** `YYYY-MM-01` plus a number of months (the date must be a first of the month). */
export function addMonths(firstOfMonth: string, months: number): string {
  const index = Number(firstOfMonth.slice(0, 4)) * 12 + Number(firstOfMonth.slice(5, 7)) - 1 + months;
  return `${String(Math.floor(index / 12)).padStart(4, '0')}-${String((index % 12) + 1).padStart(2, '0')}-01`;
}

/** The last day of the date's month. */
export function lastDayOfMonth(date: string): string {
  return `${date.slice(0, 8)}${daysInMonth(Number(date.slice(0, 4)), Number(date.slice(5, 7)))}`;
}

/** The last day of the period starting on `start`; never past 9999-12-31. */
export function periodEnd(start: string, granularity: Granularity): string {
  if (granularity === 'day') return start;
  if (granularity === 'week') {
    const end = toDayNumber(start) + 6;
    return end > LAST_DAY ? '9999-12-31' : fromDayNumber(end);
  }
  const next = nextPeriodStart(start, granularity);
  return next > '9999-12-31' || next.length > 10 ? '9999-12-31' : fromDayNumber(toDayNumber(next) - 1);
}

const LAST_DAY = toDayNumber('9999-12-31');

/** The day before / after a date. */
export function addDays(date: string, days: number): string {
  return fromDayNumber(toDayNumber(date) + days);
}
