import multipart from '@fastify/multipart';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { Config } from '../config.js';
import type { Database } from '../db/database.js';
import { AppError, notFound, writeConflict } from '../http/errors.js';
import type { Lifecycle } from '../lifecycle.js';
import type { Telemetry } from '../telemetry.js';
import { WriteConflict } from '../write/sales-change.js';
import {
  importFile,
  importFolder,
  startFolderImport,
  type FileOutcome,
  type ImportOptions,
} from './import.service.js';
import { ImportRuns, sharedProgress } from './import-progress.js';
import { presentFolderResult, presentImport, presentImportSummary, presentOutcome } from './imports.presenter.js';
import { countImports, findImportById, listImports } from './imports.repository.js';
import {
  FileResult,
  ImportIdParams,
  ImportListQuery,
  ImportListResponse,
  ImportRecord,
  ImportRunQuery,
  ImportRunResponse,
  ImportStartedResponse,
  UploadQuery,
} from './imports.schemas.js';
import { cleanFilename, receiveUpload, type Upload } from './upload.js';
import { undoImport, UndoConflict } from './undo.service.js';

const errors = { 400: { $ref: 'ErrorResponse#' }, 503: { $ref: 'ErrorResponse#' } } as const;

/** Imports and undo change sales, take as long as their file, and need the full token. */
const writes = { access: 'admin', longRunning: true, changesSales: true } as const;
/** Import records are for the read-only token too. */
const reads = { access: 'read' } as const;

export const importRoutes: FastifyPluginAsyncTypebox<{
  database: Database;
  config: Config;
  telemetry: Telemetry;
  lifecycle: Lifecycle;
}> = async (app, { database, config, telemetry, lifecycle }) => {
  // This app's running imports: their progress is its own, never another app's in the process.
  const runs = new ImportRuns();
  // Another instance's (or app's) import: the progress it writes to the database, while fresh.
  const withProgress = async (id: number) => {
    const progress = runs.progress(id) ?? (await sharedProgress(database, id));
    return progress ? { progress } : {};
  };
  const onFileDone = (outcome: FileOutcome) => {
    if (outcome.status === 'refused') return telemetry.importFinished('failed', 0, 0, null);
    telemetry.importFinished(
      outcome.status,
      outcome.status === 'skipped' ? 0 : outcome.record.num_rows,
      outcome.status === 'skipped' ? 0 : outcome.record.rows_rejected,
      outcome.status === 'skipped' || outcome.record.duration_ms === null ? null : outcome.record.duration_ms / 1000,
    );
  };
  const options = (onError: 'fail' | 'skip', log: ImportOptions['log']): ImportOptions => ({
    onError,
    log,
    signal: lifecycle.signal,
    onFileDone,
    mysqlLoadMethod: config.mysqlLoadMethod,
    runs,
  });

  // Upload bodies are streams: CSV text straight to a temporary file, never buffered whole.
  app.addContentTypeParser(['text/csv', 'application/csv', 'text/plain'], (_request, payload, done) => done(null, payload));
  await app.register(multipart, { limits: { fileSize: config.maxUploadBytes, files: 1, fields: 10 } });

  app.route({
    method: ['GET', 'POST'],
    url: '/api/import-sales',
    // GET runs the import too: it is no read.
    config: writes,
    schema: {
      tags: ['imports'],
      summary: 'Import every new *.csv in the sales folder, in name order',
      description: 'With async=true: 202 once every new file has its record, then follow GET /api/imports/{id}.',
      querystring: ImportRunQuery,
      response: { 200: ImportRunResponse, 202: ImportStartedResponse, ...errors },
    },
    handler: async (request, reply) => {
      const run = options(request.query.on_error ?? 'fail', request.log);
      if (request.query.async) {
        const { started, queued } = await startFolderImport(database, config.salesDir, { ...run, log: app.log });
        return reply.status(202).send({
          files: [...queued.map(presentImport), ...started.map(presentOutcome)],
        });
      }
      return presentFolderResult(await importFolder(database, config.salesDir, run));
    },
  });

  app.post(
    '/api/imports',
    {
      config: writes,
      schema: {
        tags: ['imports'],
        summary: 'Upload one CSV file and import it',
        description:
          `Send the CSV as the body (Content-Type: text/csv; name it with ?filename=) or as multipart/form-data ` +
          `(field "file"). At most ${config.maxUploadBytes} bytes (MAX_UPLOAD_BYTES): larger is 413 and nothing is stored.`,
        consumes: ['text/csv', 'multipart/form-data'],
        querystring: UploadQuery,
        response: { 200: FileResult, 202: ImportRecord, 413: { $ref: 'ErrorResponse#' }, 415: { $ref: 'ErrorResponse#' }, ...errors },
      },
    },
    async (request, reply) => {
      const upload: Upload = await receiveUpload(request, config.maxUploadBytes);
      const run = options(upload.onError ?? request.query.on_error ?? 'fail', request.log);
      const filename = request.query.filename ? cleanFilename(request.query.filename) : upload.filename;
      const claimed = deferred<number>();
      const finished = importFile(database, upload.path, filename, {
        ...run,
        log: request.query.async ? app.log : request.log,
        onClaimed: (id) => claimed.resolve(id),
      }).finally(() => upload.remove());
      if (!request.query.async) return presentOutcome(await finished);

      finished.catch((error: unknown) => app.log.error({ err: error }, 'background upload import failed'));
      const first = await Promise.race([claimed.promise, finished]);
      if (typeof first !== 'number') return presentOutcome(first);
      const record = (await findImportById(database.db, first))!;
      return reply.status(202).send({ ...presentImport(record), ...(await withProgress(first)) });
    },
  );

  app.get(
    '/api/imports',
    {
      config: reads,
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
      const [rows, total] = await Promise.all([listImports(database.db, limit, offset), countImports(database.db)]);
      return { imports: rows.map(presentImportSummary), total, limit, offset };
    },
  );

  app.get(
    '/api/imports/:id',
    {
      config: reads,
      schema: {
        tags: ['imports'],
        summary: 'One import record with its row errors (and its progress while processing)',
        params: ImportIdParams,
        response: { 200: ImportRecord, 404: { $ref: 'ErrorResponse#' }, ...errors },
      },
    },
    async (request) => {
      const record = await findImportById(database.db, request.params.id);
      if (!record) throw notFound(`no import with id ${request.params.id}`);
      return { ...presentImport(record), ...(record.status === 'processing' ? await withProgress(record.id) : {}) };
    },
  );

  app.delete(
    '/api/imports/:id',
    {
      config: writes,
      schema: {
        tags: ['imports'],
        summary: 'Undo an import: remove its rows, restore the rows it replaced, mark it reverted',
        params: ImportIdParams,
        response: { 200: ImportRecord, 404: { $ref: 'ErrorResponse#' }, 409: { $ref: 'ErrorResponse#' }, ...errors },
      },
    },
    async (request) => {
      try {
        const record = await undoImport(database, request.params.id, { signal: lifecycle.signal, log: request.log });
        if (!record) throw notFound(`no import with id ${request.params.id}`);
        request.log.info({ importId: record.id, file: record.filename }, 'import reverted');
        return presentImport(record);
      } catch (error) {
        if (error instanceof UndoConflict) throw new AppError(409, 'conflict', error.message);
        if (error instanceof WriteConflict) {
          throw writeConflict(
            `the database kept refusing the undo's transaction as conflicting with another writer ` +
              `(error ${error.conflictCode}, ${error.attempts} attempts); nothing was changed: try again`,
          );
        }
        throw error;
      }
    },
  );
};

function deferred<T>() {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}
