import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { Config } from '../config.js';
import type { Database } from '../db/connection.js';
import { notFound } from '../http/errors.js';
import type { Lifecycle } from '../lifecycle.js';
import type { Telemetry } from '../telemetry.js';
import { importFolder, type FileOutcome } from './import.service.js';
import { presentFolderResult, presentImport } from './imports.presenter.js';
import { countImports, findImportById, listImports } from './imports.repository.js';
import {
  ImportIdParams,
  ImportListQuery,
  ImportListResponse,
  ImportRecord,
  ImportRunQuery,
  ImportRunResponse,
} from './imports.schemas.js';

const errors = { 400: { $ref: 'ErrorResponse#' }, 503: { $ref: 'ErrorResponse#' } } as const;

export const importRoutes: FastifyPluginAsyncTypebox<{
  database: Database;
  config: Config;
  telemetry: Telemetry;
  lifecycle: Lifecycle;
}> = async (app, { database, config, telemetry, lifecycle }) => {
  const onFileDone = (outcome: FileOutcome) =>
    telemetry.importFinished(
      outcome.status,
      outcome.status === 'skipped' ? 0 : outcome.record.num_rows,
      outcome.status === 'skipped' ? 0 : outcome.record.rows_rejected,
      outcome.status === 'skipped' || outcome.record.duration_ms === null ? null : outcome.record.duration_ms / 1000,
    );

  app.route({
    method: ['GET', 'POST'],
    url: '/api/import-sales',
    schema: {
      tags: ['imports'],
      summary: `Import every new *.csv in the sales folder, in name order`,
      querystring: ImportRunQuery,
      response: { 200: ImportRunResponse, ...errors },
    },
    handler: async (request) => {
      const onError = request.query.on_error ?? 'fail';
      const result = await importFolder(database, config.salesDir, {
        onError,
        log: request.log,
        signal: lifecycle.signal,
        onFileDone,
        mysqlLoadMethod: config.mysqlLoadMethod,
      });
      return presentFolderResult(result);
    },
  });

  app.get(
    '/api/imports',
    {
      schema: {
        tags: ['imports'],
        summary: 'Import records, newest first',
        querystring: ImportListQuery,
        response: { 200: ImportListResponse, ...errors },
      },
    },
    async (request) => {
      const limit = request.query.limit ?? 50;
      const offset = request.query.offset ?? 0;
      const [rows, total] = await Promise.all([
        listImports(database.db, limit, offset),
        countImports(database.db),
      ]);
      return { imports: rows.map((r) => presentImport(r, false)), total, limit, offset };
    },
  );

  app.get(
    '/api/imports/:id',
    {
      schema: {
        tags: ['imports'],
        summary: 'One import record with its row errors',
        params: ImportIdParams,
        response: { 200: ImportRecord, 404: { $ref: 'ErrorResponse#' }, ...errors },
      },
    },
    async (request) => {
      const record = await findImportById(database.db, request.params.id);
      if (!record) throw notFound(`no import with id ${request.params.id}`);
      return presentImport(record);
    },
  );
};
