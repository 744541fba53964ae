import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Database } from '../db/database.js';
import type { ReadReplicas } from '../db/read-replicas.js';
import { ifNoneMatch, type MetricsCache } from './answer-cache.js';
import { presentByProductAnswer, presentDailyAnswer, presentSeriesAnswer, presentTotalsAnswer } from './revenue.presenter.js';
import {
  ByProductQuery,
  ByProductResponse,
  DailyRevenueResponse,
  RangeQuery,
  RevenueTotalsResponse,
  SeriesQuery,
  SeriesResponse,
  TotalsQuery,
} from './revenue.schemas.js';
import {
  byProductQuestion,
  dailyQuestion,
  MAX_SERIES_DAYS,
  MAX_SERIES_SPAN_DAYS,
  RevenueService,
  seriesQuestion,
  totalsQuestion,
  type RevenueQuestion,
} from './revenue.service.js';

const errors = { 400: { $ref: 'ErrorResponse#' }, 503: { $ref: 'ErrorResponse#' } } as const;
/** Answers carry the data version as ETag: If-None-Match with it gets 304, no body, until the data changes. */
const notModified = { 304: { type: 'null', description: 'Not modified: the If-None-Match ETag is still current (the data has not changed)' } } as const;

/** Metrics are reads: the read-only token may ask them. */
const reads = { access: 'read' } as const;

export const revenueRoutes: FastifyPluginAsyncTypebox<{ database: Database; cache: MetricsCache; replicas: ReadReplicas }> = async (
  app,
  { database, cache, replicas },
) => {
  const revenue = new RevenueService(database);

  /**
   * Answers from the cache when it can: the ETag is the data version, so a matching
   * If-None-Match gets 304 without any work; otherwise the serialized answer of (version,
   * question) is sent, computed once per version. The version and the answer come from one
   * server (a usable read replica, else the primary), so an ETag always names the data it was
   * computed from, whichever server that was.
   */
  async function send<T>(
    request: FastifyRequest,
    reply: FastifyReply,
    question: RevenueQuestion<T>,
    present: (answer: T) => unknown,
  ) {
    const source = await replicas.source();
    const version = source.version;
    const etag = cache.etag(version);
    reply.header('etag', etag).header('cache-control', cache.cacheControl);
    if (ifNoneMatch(request.headers['if-none-match'], etag)) return reply.code(304).send();
    let body: Buffer;
    try {
      body = await cache.answers.get(version, question.key, async () => {
        const answer = await replicas.read(source, (from) => revenue.answer(question, version, from));
        return reply.serialize(present(answer)) as string;
      });
    } catch (error) {
      // A failed answer (a database error, or a question found invalid only once the data is read) carries no ETag.
      reply.removeHeader('etag').removeHeader('cache-control');
      throw error;
    }
    return reply.type('application/json; charset=utf-8').send(body);
  }

  app.get(
    '/api/metrics/revenue',
    {
      config: reads,
      schema: {
        operationId: 'getRevenue',
        tags: ['metrics'],
        summary: 'Total revenue, distinct orders and sales in a date range',
        description:
          'Optionally for some products only (product_id, repeatable), and compared with the equally long ' +
          'period just before (compare=previous_period, needs start and end).',
        querystring: TotalsQuery,
        response: { 200: RevenueTotalsResponse, ...notModified, ...errors },
      },
    },
    async (request, reply) => {
      const { start, end, compare, product_id } = request.query;
      return send(request, reply, totalsQuestion({ start, end, compare, productIds: product_id }), presentTotalsAnswer);
    },
  );

  app.get(
    '/api/metrics/revenue/daily',
    {
      config: reads,
      schema: {
        operationId: 'getDailyRevenue',
        tags: ['metrics'],
        summary: 'Revenue per calendar day, zero-filled',
        description: `Absent bounds default to the first / last sale date. At most ${MAX_SERIES_DAYS} days.`,
        querystring: RangeQuery,
        response: { 200: DailyRevenueResponse, ...notModified, ...errors },
      },
    },
    async (request, reply) => send(request, reply, dailyQuestion(request.query), presentDailyAnswer),
  );

  app.get(
    '/api/metrics/revenue/series',
    {
      config: reads,
      schema: {
        operationId: 'getRevenueSeries',
        tags: ['metrics'],
        summary: 'Revenue per day, ISO week, month, quarter or year, zero-filled',
        description:
          'Periods are labelled by their first day; the first and last are clipped to the range and flagged ' +
          '`partial` when the range cuts them. Absent bounds default to the first / last sale date. ' +
          `At most ${MAX_SERIES_DAYS} periods and ${MAX_SERIES_SPAN_DAYS} days.`,
        querystring: SeriesQuery,
        response: { 200: SeriesResponse, ...notModified, ...errors },
      },
    },
    async (request, reply) => {
      const { start, end, granularity, product_id } = request.query;
      return send(request, reply, seriesQuestion({ start, end, granularity, productIds: product_id }), presentSeriesAnswer);
    },
  );

  app.get(
    '/api/metrics/revenue/by-product',
    {
      config: reads,
      schema: {
        operationId: 'getRevenueByProduct',
        tags: ['metrics'],
        summary: 'Top products in a date range by revenue or by orders',
        description:
          'Each with its revenue, share of the range’s total revenue, distinct orders and sales. ' +
          'Ties rank by product id (by revenue, then product id, when ordered by orders).',
        querystring: ByProductQuery,
        response: { 200: ByProductResponse, ...notModified, ...errors },
      },
    },
    async (request, reply) => send(request, reply, byProductQuestion(request.query), presentByProductAnswer),
  );
};
