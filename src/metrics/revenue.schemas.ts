import { Type, type Static } from 'typebox';
import { GRANULARITIES } from '../calendar.js';

const date = (description: string) => Type.String({ format: 'date', description, examples: ['2024-01-31'] });
const money = (description: string) => Type.String({ pattern: '^-?\\d+\\.\\d{2}$', description, examples: ['12345.67'] });
const percent = (description: string) =>
  Type.Union([Type.String({ pattern: '^-?\\d+\\.\\d{2}$', description, examples: ['12.50'] }), Type.Null()]);
const nullableDate = Type.Union([Type.String(), Type.Null()]);

/** Most product ids one question may name. */
export const MAX_PRODUCT_IDS = 100;
/** Most products the by-product ranking returns. */
export const MAX_PRODUCT_LIMIT = 500;

const range = {
  start: Type.Optional(date('First day, inclusive (YYYY-MM-DD). Absent: unbounded.')),
  end: Type.Optional(date('Last day, inclusive (YYYY-MM-DD). Absent: unbounded.')),
};

const productIds = Type.Optional(
  Type.Array(Type.String({ minLength: 1, maxLength: 64 }), {
    maxItems: MAX_PRODUCT_IDS,
    description:
      'Only sales of these products; repeat the parameter for several (product_id=A&product_id=B). ' +
      `Compared exactly; at most ${MAX_PRODUCT_IDS}.`,
  }),
);

export const RangeQuery = Type.Object(range);
export type RangeQuery = Static<typeof RangeQuery>;

export const TotalsQuery = Type.Object({
  ...range,
  product_id: productIds,
  compare: Type.Optional(
    Type.Enum(['previous_period'], {
      description:
        'previous_period: also answer for the equally long period just before [start, end] (both required), ' +
        'and the change from it',
    }),
  ),
});
export type TotalsQuery = Static<typeof TotalsQuery>;

export const SeriesQuery = Type.Object({
  ...range,
  granularity: Type.Optional(
    Type.Enum([...GRANULARITIES], {
      description: 'Length of each period (default day). Weeks are ISO weeks starting on Monday.',
    }),
  ),
  product_id: productIds,
});
export type SeriesQuery = Static<typeof SeriesQuery>;

export const ByProductQuery = Type.Object({
  ...range,
  limit: Type.Optional(
    Type.Integer({ minimum: 1, maximum: MAX_PRODUCT_LIMIT, description: `How many products (default 10, at most ${MAX_PRODUCT_LIMIT})` }),
  ),
  order: Type.Optional(
    Type.Enum(['revenue', 'orders'], { description: 'Rank by revenue (default) or by distinct orders' }),
  ),
});
export type ByProductQuery = Static<typeof ByProductQuery>;

const totalsFields = {
  total_revenue: money('Sum of amount_sgd in the range'),
  order_count: Type.Integer({ description: 'Distinct order_id values with a sale in the range' }),
  sale_count: Type.Integer({ description: 'Sale rows in the range' }),
  average_order_value: Type.Union([money('total_revenue / order_count, rounded half away from zero'), Type.Null()]),
};

const moneyChange = Type.Object({
  absolute: Type.Union([money('This period minus the previous one'), Type.Null()]),
  percent: percent('The change as a percentage of the previous value (two decimals, half away from zero); null when that is 0 or null'),
});
const countChange = Type.Object({
  absolute: Type.Integer({ description: 'This period minus the previous one' }),
  percent: percent('The change as a percentage of the previous value (two decimals, half away from zero); null when that is 0'),
});

export const RevenueTotalsResponse = Type.Object({
  start: nullableDate,
  end: nullableDate,
  currency: Type.Literal('SGD'),
  ...totalsFields,
  product_ids: Type.Optional(Type.Array(Type.String(), { description: 'The product filter, when one was given (sorted, unique)' })),
  compare: Type.Optional(Type.Literal('previous_period')),
  previous: Type.Optional(
    Type.Object({ start: Type.String(), end: Type.String(), ...totalsFields }, { description: 'The equally long period just before' }),
  ),
  change: Type.Optional(
    Type.Object({
      total_revenue: moneyChange,
      order_count: countChange,
      sale_count: countChange,
      average_order_value: moneyChange,
    }),
  ),
});

export const DailyRevenueResponse = Type.Object({
  start: nullableDate,
  end: nullableDate,
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

export const SeriesResponse = Type.Object({
  start: nullableDate,
  end: nullableDate,
  granularity: Type.Enum([...GRANULARITIES]),
  currency: Type.Literal('SGD'),
  product_ids: Type.Optional(Type.Array(Type.String())),
  periods: Type.Array(
    Type.Object({
      period: Type.String({ description: 'First day of the calendar period (its label)' }),
      start: Type.String({ description: 'First day of the period inside the range' }),
      end: Type.String({ description: 'Last day of the period inside the range' }),
      partial: Type.Boolean({ description: 'The range cuts this period (only the first or last can be)' }),
      revenue: money('Revenue of the period (of its part inside the range)'),
      order_count: Type.Integer({ description: 'Distinct orders with a sale in the period, each counted once' }),
      sale_count: Type.Integer(),
    }),
  ),
});

export const ByProductResponse = Type.Object({
  start: nullableDate,
  end: nullableDate,
  currency: Type.Literal('SGD'),
  order: Type.Enum(['revenue', 'orders']),
  limit: Type.Integer(),
  total_revenue: money('Revenue of all products in the range'),
  products: Type.Array(
    Type.Object({
      product_id: Type.String(),
      revenue: money('Revenue of the product in the range'),
      share: percent('revenue / total_revenue as a percentage (two decimals); null when total_revenue is 0'),
      order_count: Type.Integer({ description: 'Distinct orders with a sale of the product' }),
      sale_count: Type.Integer(),
    }),
  ),
});
