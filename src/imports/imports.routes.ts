import multipart from '@fastify/multipart';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { Config } from '../config.js';
import type { Database } from '../db/database.js';
import { AppError, invalidParameter, notFound, salesSourceError, writeConflict } from '../http/errors.js';
import { errorAnswer } from '../http/schemas.js';
import type { Lifecycle } from '../lifecycle.js';
import type { Telemetry } from '../telemetry.js';
import { WriteConflict } from '../write/sales-change.js';
import {
  importFile,
  importFolder,
  startFolderImport,
  type ImportOptions,
} from './import.service.js';
import { countImportOutcome } from './import-metrics.js';
import { sharedProgress, type ImportRuns } from './import-progress.js';
import { openSalesFolder } from './sales-folder.js';
import { SalesFolderError } from './sales-source.js';
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
  UploadBody,
  UploadQuery,
} from './imports.schemas.js';
import { cleanFilename, receiveUpload, type Upload } from './upload.js';
import { ColumnAliasError, DELIMITER_CHOICES, importFormat, isDelimiterChoice, type CsvFormat } from './csv-format.js';
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
  /** This app's running imports (its watched folder's too): their progress is its own, never another app's in the process. */
  runs: ImportRuns;
}> = async (app, { database, config, telemetry, lifecycle, runs }) => {
  telemetry.watchImports(runs);
  // Another instance's (or app's) import: the progress it writes to the database, while fresh.
  const withProgress = async (id: number) => {
    const progress = runs.progress(id) ?? (await sharedProgress(database, id));
    return progress ? { progress } : {};
  };
  const onFileDone = countImportOutcome(telemetry);
  const options = (onError: 'fail' | 'skip', log: ImportOptions['log'], csv: CsvFormat): ImportOptions => ({
    onError,
    log,
    signal: lifecycle.signal,
    onFileDone,
    mysqlLoadMethod: config.mysqlLoadMethod,
    csv,
    runs,
  });
  /** An import's CSV format: its delimiter, CSV_COLUMNS with its own columns added; 400 naming the parameter it cannot use. */
  const csvFormat = (delimiter: string | undefined, columns: string | undefined): CsvFormat => {
    if (delimiter !== undefined && !isDelimiterChoice(delimiter)) {
      throw invalidParameter('delimiter', `delimiter must be ${DELIMITER_CHOICES.join(', ')}`);
    }
    try {
      return importFormat(config.csvColumns, delimiter, columns);
    } catch (error) {
      if (error instanceof ColumnAliasError) throw invalidParameter('columns', `columns ${error.message}`);
      throw error;
    }
  };

  // Upload bodies are streams: CSV text straight to a temporary file, never buffered whole.
  app.addContentTypeParser(['text/csv', 'application/csv', 'text/plain'], (_request, payload, done) => done(null, payload));
  await app.register(multipart, { limits: { fileSize: config.maxUploadBytes, files: 1, fields: 10 } });

  // GET runs the import too (it is no read): one operation each, so each has its own operationId.
  const folderRun = {
    POST: { operationId: 'importSalesFolder', also: '' },
    GET: { operationId: 'importSalesFolderByGet', also: ' The same as POST /api/import-sales, for callers that can only GET; it changes data all the same.' },
  } as const;
  for (const method of ['POST', 'GET'] as const) {
    app.route({
      method,
      url: '/api/import-sales',
      config: writes,
      schema: {
        operationId: folderRun[method].operationId,
        tags: ['imports'],
        summary: 'Import every new *.csv in the sales folder, in name order',
        description:
          'Each file is identified by the SHA-256 of its bytes: a file already imported is skipped. ' +
          'on_error=fail (default) stores nothing of a file with a bad row; on_error=skip stores its valid rows (status partial). ' +
          'With async=true: 202 once every new file has its record, then follow GET /api/imports/{id}.' +
          folderRun[method].also,
        querystring: ImportRunQuery,
        response: { 200: ImportRunResponse, 202: ImportStartedResponse, 502: { $ref: 'ErrorResponse#' }, ...errors },
      },
      handler: async (request, reply) => {
        const run = options(request.query.on_error ?? 'fail', request.log, csvFormat(request.query.delimiter, request.query.columns));
        // SALES_DIR, or SALES_URL's bucket: a client of its own, closed once the run is over.
        const folder = await openSalesFolder(config);
        const close = () => folder.close?.().catch(() => {});
        let running = false;
        try {
          if (request.query.async) {
            const { started, queued, done } = await startFolderImport(database, folder, { ...run, log: app.log });
            running = true;
            void done.then(close, close);
            return reply.status(202).send({
              files: [...queued.map(presentImport), ...started.map(presentOutcome)],
            });
          }
          return presentFolderResult(await importFolder(database, folder, run));
        } catch (error) {
          if (error instanceof SalesFolderError) throw salesSourceError(error.reason === 'unreachable', error.message);
          throw error;
        } finally {
          if (!running) await close();
        }
      },
    });
  }

  app.post(
    '/api/imports',
    {
      config: writes,
      schema: {
        operationId: 'uploadImport',
        tags: ['imports'],
        summary: 'Upload one CSV file and import it',
        description:
          'Send the CSV as the body (Content-Type: text/csv; name it with ?filename=) or as multipart/form-data ' +
          '(field "file"). The body streams to a temporary file, never held in memory. At most MAX_UPLOAD_BYTES ' +
          '(default 1 GiB): larger is 413 and nothing is stored. A file already imported (same SHA-256) is skipped. ' +
          'With async=true: 202 once the file has its record, then follow GET /api/imports/{id}.',
        streamedBody: UploadBody,
        querystring: UploadQuery,
        response: {
          200: FileResult,
          202: ImportRecord,
          413: errorAnswer('The upload is larger than MAX_UPLOAD_BYTES; nothing was stored'),
          415: errorAnswer('Not a CSV upload (another Content-Type, no "file" part, or binary content); nothing was stored'),
          ...errors,
        },
      },
    },
    async (request, reply) => {
      // Checked before the body is read; form fields (read with it) come second.
      let csv = csvFormat(request.query.delimiter, request.query.columns);
      const upload: Upload = await receiveUpload(request, config.maxUploadBytes);
      if (upload.delimiter !== undefined || upload.columns !== undefined) {
        try {
          csv = csvFormat(upload.delimiter ?? request.query.delimiter, upload.columns ?? request.query.columns);
        } catch (error) {
          upload.remove();
          throw error;
        }
      }
      const run = options(upload.onError ?? request.query.on_error ?? 'fail', request.log, csv);
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
        operationId: 'listImports',
        tags: ['imports'],
        summary: 'Import records, newest first',
        description:
          'One page of the import records (without their row errors), newest first, and the total count. ' +
          'Page with limit (at most 500, default 50) and offset.',
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
        operationId: 'getImport',
        tags: ['imports'],
        summary: 'One import record with its row errors (and its progress while processing)',
        description:
          'The record of one import: its status, rows stored and rejected, and the first 100 row errors (line, column, message). ' +
          'While it is processing, its progress too, from any instance sharing the database (MySQL, PostgreSQL). 404 for an unknown id.',
        params: ImportIdParams,
        response: { 200: ImportRecord, 404: errorAnswer('No import with this id'), ...errors },
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
        operationId: 'undoImport',
        tags: ['imports'],
        summary: 'Undo an import: remove its rows, restore the rows it replaced, mark it reverted',
        description:
          'Its rows go, the rows it had replaced come back, and the record becomes reverted (the same file can then be imported again), ' +
          'in one transaction. 409 while the import is still processing, or when it is already reverted or failed (stored nothing); 404 for an unknown id.',
        params: ImportIdParams,
        response: {
          200: ImportRecord,
          404: errorAnswer('No import with this id'),
          409: errorAnswer('The import is still processing, or already reverted, or failed; nothing was changed'),
          ...errors,
        },
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
