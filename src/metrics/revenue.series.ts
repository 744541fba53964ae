import { addDays, periodEnd, periodStart, type Granularity } from '../calendar.js';
import type { DayRevenue, RevenueTotals } from './revenue.queries.js';

export interface PeriodRevenue extends RevenueTotals {
  /** First day of the calendar period (its label). */
  period: string;
  /** The part of the period inside the range. */
  start: string;
  end: string;
  /** True when the range cuts the period (first or last period only). */
  partial: boolean;
}

/** The periods of `granularity` that [start, end] touches, in order, clipped to the range. */
export function periodsOf(start: string, end: string, granularity: Granularity): Array<Omit<PeriodRevenue, keyof RevenueTotals>> {
  const periods: Array<Omit<PeriodRevenue, keyof RevenueTotals>> = [];
  let label = periodStart(start, granularity);
  for (;;) {
    const last = periodEnd(label, granularity);
    const from = label < start ? start : label;
    const to = last > end ? end : last;
    periods.push({ period: label, start: from, end: to, partial: from !== label || to !== last });
    if (to >= end) return periods;
    label = addDays(last, 1);
  }
}

/** How many periods of `granularity` [start, end] touches, without listing them. */
export function countPeriods(start: string, end: string, granularity: Granularity): number {
  const ym = (d: string) => Number(d.slice(0, 4)) * 12 + Number(d.slice(5, 7)) - 1;
  switch (granularity) {
    case 'day':
      return Math.round((Date.parse(end) - Date.parse(start)) / 86_400_000) + 1;
    case 'week':
      return Math.round((Date.parse(periodStart(end, 'week')) - Date.parse(periodStart(start, 'week'))) / (7 * 86_400_000)) + 1;
    case 'month':
      return ym(end) - ym(start) + 1;
    case 'quarter':
      return Math.floor(ym(end) / 3) - Math.floor(ym(start) / 3) + 1;
    case 'year':
      return Number(end.slice(0, 4)) - Number(start.slice(0, 4)) + 1;
  }
}

/**
 * Adds days up into periods, zero-filled. An order on k days of one period is in k daily counts
 * and must count once: `overCount` holds, for each such order, k − 1 of its dates (see
 * seriesOverCount), and each takes one order off the period it falls in.
 */
export function buildSeries(
  days: DayRevenue[],
  overCount: readonly string[],
  start: string,
  end: string,
  granularity: Granularity,
): PeriodRevenue[] {
  const periods: PeriodRevenue[] = periodsOf(start, end, granularity).map((p) => ({
    ...p,
    revenueCents: 0n,
    orderCount: 0,
    saleCount: 0,
  }));
  const index = new Map(periods.map((p, i) => [p.period, i]));
  const at = (date: string) => periods[index.get(periodStart(date, granularity))!]!;
  for (const day of days) {
    const p = at(day.date);
    p.revenueCents += day.revenueCents;
    p.orderCount += day.orderCount;
    p.saleCount += day.saleCount;
  }
  for (const date of overCount) at(date).orderCount -= 1;
  return periods;
}
