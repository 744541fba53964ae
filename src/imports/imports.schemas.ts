import { Type } from 'typebox';
import type { DocumentedBody } from '../http/openapi.js';
import { PROGRESS_STALE_MS } from './import-progress.js';

const RowErrorSchema = Type.Object({
  line: Type.Integer({ description: 'Physical line where the record starts; the header is line 1' }),
  column: Type.Union([Type.String(), Type.Null()], { description: 'null when the whole row is at fault' }),
  message: Type.String(),
});

const recordFields = {
  id: Type.Integer(),
  filename: Type.String(),
  sha256: Type.String(),
  size_bytes: Type.Integer(),
  status: Type.Union([
    Type.Literal('processing'),
    Type.Literal('success'),
    Type.Literal('partial'),
    Type.Literal('failed'),
    Type.Literal('reverted'),
  ]),
  on_error: Type.Union([Type.Literal('fail'), Type.Literal('skip')]),
  num_rows: Type.Integer({ description: 'Rows stored' }),
  rows_rejected: Type.Integer({ description: 'Rows with errors (not stored)' }),
  imported_at: Type.String({ format: 'date-time' }),
  duration_ms: Type.Union([Type.Integer(), Type.Null()]),
  error_message: Type.Union([Type.String(), Type.Null()]),
  error_count: Type.Integer({ description: 'All row errors found; `errors` keeps the first 100' }),
  warnings: Type.Array(Type.String()),
};

const Progress = Type.Object(
  {
    bytes_read: Type.Integer(),
    bytes_total: Type.Integer(),
    rows_read: Type.Integer(),
    rows_per_s: Type.Integer(),
    eta_s: Type.Union([Type.Number(), Type.Null()]),
  },
  {
    description:
      'While processing: from the instance running the import, or as it last wrote it to the database ' +
      `(MySQL, PostgreSQL; omitted when that is more than ${PROGRESS_STALE_MS / 1000} s old)`,
  },
);

export const ImportRecordSummary = Type.Object(recordFields);
export const ImportRecord = Type.Object({
  ...recordFields,
  errors: Type.Array(RowErrorSchema),
  progress: Type.Optional(Progress),
});

export const FileResult = Type.Object({
  id: Type.Integer(),
  filename: Type.String(),
  sha256: Type.String(),
  status: Type.Union([
    Type.Literal('processing'),
    Type.Literal('success'),
    Type.Literal('partial'),
    Type.Literal('failed'),
    Type.Literal('reverted'),
    Type.Literal('skipped'),
  ]),
  error_message: Type.Union([Type.String(), Type.Null()]),
  size_bytes: Type.Optional(Type.Integer()),
  on_error: Type.Optional(Type.String()),
  num_rows: Type.Optional(Type.Integer()),
  rows_rejected: Type.Optional(Type.Integer()),
  imported_at: Type.Optional(Type.String()),
  duration_ms: Type.Optional(Type.Union([Type.Integer(), Type.Null()])),
  error_count: Type.Optional(Type.Integer()),
  errors: Type.Optional(Type.Array(RowErrorSchema)),
  warnings: Type.Optional(Type.Array(Type.String())),
});

export const ImportRunResponse = Type.Object({
  files: Type.Array(FileResult),
  summary: Type.Object({
    imported: Type.Integer(),
    partial: Type.Integer(),
    skipped: Type.Integer(),
    failed: Type.Integer(),
    rows: Type.Integer({ description: 'Rows stored by this run' }),
  }),
});

const onError = Type.Optional(
  Type.Union([Type.Literal('fail'), Type.Literal('skip')], {
    default: 'fail',
    description: 'fail: a file with any bad row stores nothing; skip: store the valid rows',
  }),
);
const asyncFlag = Type.Optional(
  Type.Boolean({ default: false, description: 'Answer 202 with the import ids at once; follow GET /api/imports/{id}' }),
);

const csvDelimiter = Type.Optional(
  Type.Union([Type.Literal('auto'), Type.Literal('comma'), Type.Literal('semicolon'), Type.Literal('tab')], {
    default: 'auto',
    description:
      'Field delimiter. auto: the one of comma, semicolon and tab that splits the header into the required columns ' +
      '(a file fails when several or none do). With semicolon or tab, amount_sgd may use a decimal comma (12,50)',
  }),
);
const csvColumns = Type.Optional(
  Type.String({
    maxLength: 2000,
    description:
      'Other header names for the required columns, added to CSV_COLUMNS: comma-separated field=name pairs, ' +
      'matched trimmed and case-insensitively, e.g. `date=Order Date,amount_sgd=Total (SGD)`; row errors name the column as the file does',
  }),
);

export const ImportRunQuery = Type.Object({ on_error: onError, async: asyncFlag, delimiter: csvDelimiter, columns: csvColumns });

export const UploadQuery = Type.Object({
  on_error: onError,
  async: asyncFlag,
  delimiter: csvDelimiter,
  columns: csvColumns,
  filename: Type.Optional(Type.String({ minLength: 1, maxLength: 255, description: 'Name to record (text/csv bodies)' })),
});

export const ImportStartedResponse = Type.Object({
  files: Type.Array(FileResult),
});

export const ImportListQuery = Type.Object({
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500, default: 50 })),
  offset: Type.Optional(Type.Integer({ minimum: 0, default: 0 })),
});

export const ImportListResponse = Type.Object({
  imports: Type.Array(ImportRecordSummary),
  total: Type.Integer(),
  limit: Type.Integer(),
  offset: Type.Integer(),
});

export const ImportIdParams = Type.Object({ id: Type.Integer({ minimum: 1 }) });

const csvText = {
  schema: { type: 'string', format: 'binary', description: 'The CSV file, UTF-8: a header row, then one sale per row' },
};

/**
 * The body of POST /api/imports as the OpenAPI document shows it. Fastify never parses it: the
 * CSV streams to a temporary file (upload.ts), so it is declared for the document only.
 */
export const UploadBody: DocumentedBody = {
  description:
    'The CSV file: as the raw body (name it with ?filename=), or as a multipart form whose `file` part is the CSV. ' +
    'At most MAX_UPLOAD_BYTES (default 1 GiB); binary content (NUL bytes) is 415.',
  content: {
    'text/csv': csvText,
    'application/csv': csvText,
    'text/plain': csvText,
    'multipart/form-data': {
      schema: {
        type: 'object',
        required: ['file'],
        properties: {
          on_error: {
            type: 'string',
            enum: ['fail', 'skip'],
            description: 'As the on_error parameter (this field wins), before or after `file` in the form',
          },
          delimiter: {
            type: 'string',
            enum: ['auto', 'comma', 'semicolon', 'tab'],
            description: 'As the delimiter parameter (this field wins), before or after `file` in the form',
          },
          columns: {
            type: 'string',
            description: 'As the columns parameter (this field wins), before or after `file` in the form',
          },
          file: { type: 'string', format: 'binary', description: 'The CSV file; its name is recorded' },
        },
      },
      encoding: { file: { contentType: 'text/csv' } },
    },
  },
};
