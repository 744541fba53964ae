import { Type, type Static } from 'typebox';

const date = (description: string) => Type.String({ format: 'date', description, examples: ['2024-01-31'] });
const money = (description: string) => Type.String({ pattern: '^-?\\d+\\.\\d{2}$', description, examples: ['12345.67'] });

export const RangeQuery = Type.Object({
  start: Type.Optional(date('First day, inclusive (YYYY-MM-DD). Absent: unbounded.')),
  end: Type.Optional(date('Last day, inclusive (YYYY-MM-DD). Absent: unbounded.')),
});
export type RangeQuery = Static<typeof RangeQuery>;

export const RevenueTotalsResponse = Type.Object({
  start: Type.Union([Type.String(), Type.Null()]),
  end: Type.Union([Type.String(), Type.Null()]),
  currency: Type.Literal('SGD'),
  total_revenue: money('Sum of amount_sgd in the range'),
  order_count: Type.Integer({ description: 'Distinct order_id values with a sale in the range' }),
  sale_count: Type.Integer({ description: 'Sale rows in the range' }),
  average_order_value: Type.Union([money('total_revenue / order_count, rounded half away from zero'), Type.Null()]),
});

export const DailyRevenueResponse = Type.Object({
  start: Type.Union([Type.String(), Type.Null()]),
  end: Type.Union([Type.String(), Type.Null()]),
  currency: Type.Literal('SGD'),
  days: Type.Array(
    Type.Object({
      date: Type.String(),
      revenue: money('Revenue of the day'),
      order_count: Type.Integer(),
      sale_count: Type.Integer(),
    }),
  ),
});
