/**
 * Calendar dates as the API speaks them: "YYYY-MM-DD" strings. Arithmetic runs on UTC midnights,
 * so no time zone or daylight-saving change can shift a day; "today" is the browser's local date.
 */

const DAY_MS = 86_400_000;

export function toUtcMs(date: string): number {
  const [y, m, d] = date.split('-').map(Number) as [number, number, number];
  return Date.UTC(y, m - 1, d);
}

function fromUtcMs(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}

export function addDays(date: string, days: number): string {
  return fromUtcMs(toUtcMs(date) + days * DAY_MS);
}

/** Days from start to end, both included. */
export function daysInclusive(start: string, end: string): number {
  return Math.round((toUtcMs(end) - toUtcMs(start)) / DAY_MS) + 1;
}

export function isDate(value: string): boolean {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(value)) return false;
  return fromUtcMs(toUtcMs(value)) === value;
}

export function today(now = new Date()): string {
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${now.getFullYear()}-${pad(now.getMonth() + 1)}-${pad(now.getDate())}`;
}

export type Preset = 'last7' | 'last30' | 'last90' | 'month' | 'year' | 'all';

export const PRESETS: Array<{ id: Preset; label: string }> = [
  { id: 'last7', label: 'Last 7 days' },
  { id: 'last30', label: 'Last 30 days' },
  { id: 'last90', label: 'Last 90 days' },
  { id: 'month', label: 'This month' },
  { id: 'year', label: 'This year' },
  { id: 'all', label: 'All time' },
];

export interface Range {
  start: string;
  end: string;
}

/** The range of a preset; `all` needs the first and last sale dates (null without sales). */
export function presetRange(preset: Preset, bounds: Range | null, now = today()): Range | null {
  switch (preset) {
    case 'last7':
      return { start: addDays(now, -6), end: now };
    case 'last30':
      return { start: addDays(now, -29), end: now };
    case 'last90':
      return { start: addDays(now, -89), end: now };
    case 'month':
      return { start: `${now.slice(0, 8)}01`, end: now };
    case 'year':
      return { start: `${now.slice(0, 5)}01-01`, end: now };
    case 'all':
      return bounds;
  }
}

const dayFormat = new Intl.DateTimeFormat('en-SG', { day: 'numeric', month: 'short', year: 'numeric', timeZone: 'UTC' });
const monthFormat = new Intl.DateTimeFormat('en-SG', { month: 'short', year: 'numeric', timeZone: 'UTC' });

/** "2024-03-05" → "5 Mar 2024". */
export function formatDate(date: string): string {
  return dayFormat.format(new Date(toUtcMs(date)));
}

/** "2024-03-01" → "Mar 2024". */
export function formatMonth(date: string): string {
  return monthFormat.format(new Date(toUtcMs(date)));
}

export function formatRange(range: Range): string {
  return range.start === range.end ? formatDate(range.start) : `${formatDate(range.start)} – ${formatDate(range.end)}`;
}
