import { divideRounded, formatCents } from '../money.js';
import type { DayRevenue, RevenueTotals } from './revenue.queries.js';

/** Turns revenue numbers into their wire shape: money as decimal strings with two digits. */
export function presentTotals(start: string | null, end: string | null, t: RevenueTotals) {
  return {
    start,
    end,
    currency: 'SGD' as const,
    total_revenue: formatCents(t.revenueCents),
    order_count: t.orderCount,
    sale_count: t.saleCount,
    average_order_value: t.orderCount === 0 ? null : formatCents(divideRounded(t.revenueCents, BigInt(t.orderCount))),
  };
}

export function presentDay(d: DayRevenue) {
  return { date: d.date, revenue: formatCents(d.revenueCents), order_count: d.orderCount, sale_count: d.saleCount };
}
