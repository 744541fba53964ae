import { useEffect, useRef, useState } from 'preact/hooks';
import type { FileResult, ImportList, ImportProgress, ImportRecord, ImportSummary, Query } from '../../client/index.js';
import { ApiError, call, client, uploadFile } from './api';
import { formatBytes, formatDuration, formatEta, formatInteger, formatTimestamp } from './format';

/** Every status an import answer can carry: a record's, or `skipped` for a file imported before. */
type Status = FileResult['status'];
type OnError = NonNullable<Query<'/api/imports', 'post'>['on_error']>;

const PAGE_SIZE = 20;
const POLL_MS = 400;
const HISTORY_POLL_MS = 2000;

type Job =
  | { phase: 'uploading'; filename: string; sent: number; total: number }
  | { phase: 'processing'; filename: string; id: number; progress: ImportProgress | undefined }
  | {
      phase: 'done';
      filename: string;
      id: number;
      status: Status;
      rows: number;
      rejected: number;
      errorCount: number;
      message: string | null;
      durationMs: number | null;
    }
  | { phase: 'error'; filename: string; message: string };

function failureText(failure: unknown): string {
  return failure instanceof ApiError ? failure.message : String(failure);
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function finished(record: ImportRecord | FileResult): Job {
  return {
    phase: 'done',
    filename: record.filename,
    id: record.id,
    status: record.status,
    rows: record.num_rows ?? 0,
    rejected: record.rows_rejected ?? 0,
    errorCount: record.error_count ?? 0,
    message: record.error_message,
    durationMs: record.duration_ms ?? null,
  };
}

export function Imports() {
  const [onError, setOnError] = useState<OnError>('fail');
  const [job, setJob] = useState<Job | null>(null);
  const [list, setList] = useState<ImportList | null>(null);
  const [listError, setListError] = useState<string | null>(null);
  const [offset, setOffset] = useState(0);
  const [refresh, setRefresh] = useState(0);
  const [details, setDetails] = useState<ImportRecord | null>(null);
  const [undoing, setUndoing] = useState<ImportSummary | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const alive = useRef(true);

  useEffect(() => {
    alive.current = true;
    return () => {
      alive.current = false;
    };
  }, []);

  // The history; polled while any import in it is still processing (ours or anyone's).
  useEffect(() => {
    const abort = new AbortController();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const load = async () => {
      try {
        const answer = await call(client.GET('/api/imports', { params: { query: { limit: PAGE_SIZE, offset } }, signal: abort.signal }));
        setList(answer);
        setListError(null);
        if (answer.imports.some((r) => r.status === 'processing')) timer = setTimeout(load, HISTORY_POLL_MS);
      } catch (failure) {
        if ((failure as Error).name !== 'AbortError') setListError(failureText(failure));
      }
    };
    void load();
    return () => {
      abort.abort();
      clearTimeout(timer);
    };
  }, [offset, refresh]);

  const reload = () => setRefresh((n) => n + 1);
  const busy = job?.phase === 'uploading' || job?.phase === 'processing';

  const start = async (file: File) => {
    if (busy) return;
    setNotice(null);
    setJob({ phase: 'uploading', filename: file.name, sent: 0, total: file.size });
    try {
      const { done } = uploadFile(file, onError, (sent, total) => {
        if (alive.current) setJob({ phase: 'uploading', filename: file.name, sent, total });
      });
      const answer = await done;
      if (answer.status !== 202) {
        if (alive.current) setJob(finished(answer.body));
        reload();
        return;
      }
      let record: ImportRecord = answer.body;
      reload();
      while (record.status === 'processing') {
        if (!alive.current) return;
        setJob({ phase: 'processing', filename: record.filename, id: record.id, progress: record.progress });
        await sleep(POLL_MS);
        record = await call(client.GET('/api/imports/{id}', { params: { path: { id: record.id } } }));
      }
      if (!alive.current) return;
      setJob(finished(record));
      reload();
    } catch (failure) {
      if (alive.current) setJob({ phase: 'error', filename: file.name, message: failureText(failure) });
    }
  };

  const showErrors = async (id: number) => {
    try {
      setDetails(await call(client.GET('/api/imports/{id}', { params: { path: { id } } })));
    } catch (failure) {
      setNotice(failureText(failure));
    }
  };

  const importFolder = async () => {
    setNotice(null);
    try {
      const answer = await call(client.POST('/api/import-sales', { params: { query: { async: true } } }));
      setNotice(
        answer.files.length === 0
          ? 'No new files in the sales folder.'
          : `Importing ${answer.files.length} new ${answer.files.length === 1 ? 'file' : 'files'} from the sales folder; the history below follows them.`,
      );
      reload();
    } catch (failure) {
      setNotice(failureText(failure));
    }
  };

  return (
    <div class="page">
      <div class="page-head">
        <h1>Imports</h1>
      </div>

      <section class="card" aria-labelledby="upload-title">
        <div class="card-head">
          <h2 id="upload-title">Upload a CSV file</h2>
          <button type="button" class="link" onClick={importFolder}>
            Import new files from the sales folder
          </button>
        </div>
        <fieldset class="choice">
          <legend>When a row is bad</legend>
          <label>
            <input type="radio" name="on_error" value="fail" checked={onError === 'fail'} onChange={() => setOnError('fail')} />
            Reject the whole file (nothing is stored)
          </label>
          <label>
            <input type="radio" name="on_error" value="skip" checked={onError === 'skip'} onChange={() => setOnError('skip')} />
            Skip the bad rows and store the rest
          </label>
        </fieldset>
        <DropZone disabled={busy} onFile={start} />
        {job ? <JobStatus job={job} onShowErrors={showErrors} /> : null}
        {notice ? (
          <p class="notice" role="status">
            {notice}
          </p>
        ) : null}
      </section>

      {details ? <ErrorDetails record={details} onClose={() => setDetails(null)} /> : null}

      <section class="card" aria-labelledby="history-title">
        <div class="card-head">
          <h2 id="history-title">History</h2>
          <button type="button" class="small" onClick={reload}>
            Refresh
          </button>
        </div>
        {listError ? (
          <p class="error" role="alert">
            {listError}
          </p>
        ) : null}
        {list === null ? (
          listError ? null : <p class="muted">Loading…</p>
        ) : list.total === 0 ? (
          <div class="empty-inline">
            <p>No imports yet: drop a CSV file above.</p>
            <p class="muted">
              It needs a header row with <code>date</code>, <code>order_id</code>, <code>product_id</code> and <code>amount_sgd</code>.
            </p>
          </div>
        ) : (
          <History
            list={list}
            onPage={setOffset}
            onShowErrors={showErrors}
            onUndo={(record) => setUndoing(record)}
          />
        )}
      </section>

      {undoing ? (
        <UndoDialog
          record={undoing}
          onClose={() => setUndoing(null)}
          onDone={(record) => {
            setUndoing(null);
            setNotice(`Import #${record.id} (${record.filename}) was undone: its rows are gone and any rows it replaced are back.`);
            if (details?.id === record.id) setDetails(null);
            reload();
          }}
        />
      ) : null}
    </div>
  );
}

function DropZone({ disabled, onFile }: { disabled: boolean; onFile: (file: File) => void }) {
  const [over, setOver] = useState(false);
  const [hint, setHint] = useState<string | null>(null);
  const input = useRef<HTMLInputElement>(null);

  const take = (files: FileList | null | undefined) => {
    const list = files ? Array.from(files) : [];
    if (list.length === 0) return;
    setHint(list.length > 1 ? `One file at a time: uploading ${list[0]!.name} only.` : null);
    onFile(list[0]!);
  };

  return (
    <div
      class={`dropzone${over ? ' over' : ''}${disabled ? ' disabled' : ''}`}
      data-dropzone
      onDragOver={(e) => {
        e.preventDefault();
        if (e.dataTransfer) e.dataTransfer.dropEffect = disabled ? 'none' : 'copy';
        setOver(true);
      }}
      onDragLeave={() => setOver(false)}
      onDrop={(e) => {
        e.preventDefault();
        setOver(false);
        if (!disabled) take(e.dataTransfer?.files);
      }}
    >
      <svg class="drop-icon" viewBox="0 0 24 24" aria-hidden="true">
        <path d="M12 16V4m0 0-4.5 4.5M12 4l4.5 4.5M4 15v3a2 2 0 0 0 2 2h12a2 2 0 0 0 2-2v-3" />
      </svg>
      <p>
        <strong>Drag a CSV file here</strong> <span class="muted">or</span>
      </p>
      <button type="button" class="primary" disabled={disabled} onClick={() => input.current?.click()}>
        Choose a file…
      </button>
      <input
        ref={input}
        id="csv-file"
        class="visually-hidden"
        type="file"
        accept=".csv,text/csv"
        tabIndex={-1}
        aria-label="CSV file to import"
        disabled={disabled}
        onChange={(e) => {
          take(e.currentTarget.files);
          e.currentTarget.value = '';
        }}
      />
      {hint ? <p class="muted">{hint}</p> : null}
    </div>
  );
}

const STATUS_TEXT: Record<Status, string> = {
  processing: 'Processing',
  success: 'Success',
  partial: 'Partial',
  failed: 'Failed',
  reverted: 'Reverted',
  skipped: 'Skipped',
};

function Badge({ status }: { status: Status }) {
  return (
    <span class={`badge badge-${status}`} data-status={status}>
      {STATUS_TEXT[status]}
    </span>
  );
}

function Bar({ percent, tone, label }: { percent: number; tone: string; label: string }) {
  const value = Math.max(0, Math.min(100, Math.round(percent)));
  return (
    <div
      class={`progress progress-${tone}`}
      role="progressbar"
      aria-label={label}
      aria-valuemin={0}
      aria-valuemax={100}
      aria-valuenow={value}
    >
      <span style={{ width: `${value}%` }} />
    </div>
  );
}

function JobStatus({ job, onShowErrors }: { job: Job; onShowErrors: (id: number) => void }) {
  let percent = 0;
  let tone = 'active';
  let line = '';
  let status: Status | 'uploading' = 'uploading';
  if (job.phase === 'uploading') {
    percent = job.total > 0 ? (job.sent / job.total) * 100 : 0;
    line = `Uploading ${formatBytes(job.sent)} of ${formatBytes(job.total)}`;
  } else if (job.phase === 'processing') {
    status = 'processing';
    const p = job.progress;
    percent = p && p.bytes_total > 0 ? (p.bytes_read / p.bytes_total) * 100 : 0;
    line = p
      ? [
          `Importing: ${formatInteger(p.rows_read)} rows read`,
          p.rows_per_s > 0 ? `${formatInteger(p.rows_per_s)} rows/s` : '',
          formatEta(p.eta_s),
        ]
          .filter(Boolean)
          .join(' · ')
      : 'Importing…';
  } else if (job.phase === 'done') {
    status = job.status;
    percent = 100;
    tone = job.status === 'failed' ? 'failed' : job.status === 'partial' ? 'partial' : 'done';
    line =
      job.status === 'success'
        ? `Imported ${formatInteger(job.rows)} rows in ${formatDuration(job.durationMs)}.`
        : job.status === 'partial'
          ? `Imported ${formatInteger(job.rows)} rows; ${formatInteger(job.rejected)} bad ${job.rejected === 1 ? 'row was' : 'rows were'} skipped.`
          : job.status === 'skipped'
            ? 'This file was imported before (same content), so nothing changed. Undo that import to load it again.'
            : job.status === 'failed'
              ? `Nothing was stored. ${job.message ?? ''}`
              : (job.message ?? '');
  } else {
    tone = 'failed';
    percent = 100;
    line = job.message;
  }

  return (
    <div class="job" data-job-phase={job.phase} data-job-status={job.phase === 'done' ? job.status : job.phase}>
      <div class="job-head">
        <span class="job-file">{job.filename}</span>
        {job.phase === 'error' ? (
          <span class="badge badge-failed">Error</span>
        ) : status === 'uploading' ? (
          <span class="badge badge-processing">Uploading</span>
        ) : (
          <Badge status={status} />
        )}
      </div>
      <Bar percent={percent} tone={tone} label={`Import of ${job.filename}`} />
      <p class="job-line" role="status" aria-live="polite">
        {line}
      </p>
      {job.phase === 'done' && job.errorCount > 0 ? (
        <button type="button" class="small" onClick={() => onShowErrors(job.id)}>
          Show {formatInteger(job.errorCount)} row {job.errorCount === 1 ? 'error' : 'errors'}
        </button>
      ) : null}
    </div>
  );
}

function History(props: {
  list: ImportList;
  onPage: (offset: number) => void;
  onShowErrors: (id: number) => void;
  onUndo: (record: ImportSummary) => void;
}) {
  const { imports, total, offset, limit } = props.list;
  return (
    <>
      <div class="table-wrap">
        <table class="table table-cards" data-table="imports">
          <thead>
            <tr>
              <th scope="col">File</th>
              <th scope="col">Status</th>
              <th scope="col" class="num">
                Rows
              </th>
              <th scope="col" class="num">
                Rejected
              </th>
              <th scope="col">Imported</th>
              <th scope="col">
                <span class="visually-hidden">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {imports.map((r) => (
              <tr data-import-id={r.id} data-status={r.status}>
                <td class="file">
                  <span class="file-name">{r.filename}</span>
                  <span class="muted small-text">
                    #{r.id} · {formatBytes(r.size_bytes)}
                    {r.on_error === 'skip' ? ' · skip bad rows' : ''}
                  </span>
                </td>
                <td class="status">
                  <Badge status={r.status} />
                </td>
                <td class="num" data-label="Rows">
                  {formatInteger(r.num_rows)}
                </td>
                <td class="num" data-label="Rejected">
                  {r.rows_rejected > 0 ? formatInteger(r.rows_rejected) : '—'}
                </td>
                <td class="nowrap when">
                  {formatTimestamp(r.imported_at)}
                  {r.duration_ms !== null ? <span class="muted small-text">{formatDuration(r.duration_ms)}</span> : null}
                </td>
                <td class="action">
                  {r.error_count > 0 || (r.status === 'failed' && r.error_message) ? (
                    <button type="button" class="small" onClick={() => props.onShowErrors(r.id)} aria-label={`Errors of import #${r.id}`}>
                      Errors
                    </button>
                  ) : null}
                  {r.status === 'success' || r.status === 'partial' ? (
                    <button type="button" class="small danger-outline" onClick={() => props.onUndo(r)} aria-label={`Undo import #${r.id}`}>
                      Undo
                    </button>
                  ) : null}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {total > limit ? (
        <nav class="pager" aria-label="History pages">
          <button type="button" class="small" disabled={offset === 0} onClick={() => props.onPage(Math.max(0, offset - limit))}>
            Newer
          </button>
          <span class="muted">
            {offset + 1}–{Math.min(offset + limit, total)} of {formatInteger(total)}
          </span>
          <button type="button" class="small" disabled={offset + limit >= total} onClick={() => props.onPage(offset + limit)}>
            Older
          </button>
        </nav>
      ) : null}
    </>
  );
}

function ErrorDetails({ record, onClose }: { record: ImportRecord; onClose: () => void }) {
  const heading = useRef<HTMLHeadingElement>(null);
  useEffect(() => heading.current?.focus(), [record.id]);
  return (
    <section class="card errors-card" aria-labelledby="errors-title" data-errors-for={record.id}>
      <div class="card-head">
        <h2 id="errors-title" ref={heading} tabIndex={-1}>
          Errors in {record.filename} <span class="muted">#{record.id}</span>
        </h2>
        <button type="button" class="small" onClick={onClose}>
          Close
        </button>
      </div>
      <p>
        <Badge status={record.status} />{' '}
        {record.status === 'failed'
          ? 'Nothing from this file was stored. Fix these rows and upload it again, or upload it with “Skip the bad rows”.'
          : record.status === 'partial'
            ? `${formatInteger(record.num_rows)} rows were stored; these were skipped.`
            : ''}
      </p>
      {record.error_message ? <p class="error">{record.error_message}</p> : null}
      {record.errors.length > 0 ? (
        <>
          <div class="table-wrap">
            <table class="table" data-table="row-errors">
              <thead>
                <tr>
                  <th scope="col" class="num">
                    Line
                  </th>
                  <th scope="col">Column</th>
                  <th scope="col">Message</th>
                </tr>
              </thead>
              <tbody>
                {record.errors.map((e) => (
                  <tr>
                    <td class="num">{e.line}</td>
                    <td>{e.column ?? <span class="muted">whole row</span>}</td>
                    <td>{e.message}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
          {record.error_count > record.errors.length ? (
            <p class="muted note">
              Showing the first {formatInteger(record.errors.length)} of {formatInteger(record.error_count)} errors.
            </p>
          ) : null}
        </>
      ) : null}
    </section>
  );
}

function UndoDialog({
  record,
  onClose,
  onDone,
}: {
  record: ImportSummary;
  onClose: () => void;
  onDone: (record: ImportRecord) => void;
}) {
  const dialog = useRef<HTMLDialogElement>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    const element = dialog.current;
    if (element && !element.open) element.showModal();
    return () => element?.close();
  }, []);

  const confirm = async () => {
    setBusy(true);
    setError(null);
    try {
      onDone(await call(client.DELETE('/api/imports/{id}', { params: { path: { id: record.id } } })));
    } catch (failure) {
      setError(failureText(failure));
      setBusy(false);
    }
  };

  return (
    <dialog
      ref={dialog}
      class="dialog"
      aria-labelledby="undo-title"
      aria-describedby="undo-text"
      onCancel={(e) => {
        e.preventDefault();
        if (!busy) onClose();
      }}
    >
      <h2 id="undo-title">Undo import #{record.id}?</h2>
      <p id="undo-text">
        The {formatInteger(record.num_rows)} rows that <strong>{record.filename}</strong> stored will be removed, and any rows it
        replaced come back. The record stays in the history as reverted, and the same file can be imported again.
      </p>
      {error ? (
        <p class="error" role="alert">
          {error}
        </p>
      ) : null}
      <div class="dialog-actions">
        <button type="button" onClick={onClose} disabled={busy} autofocus>
          Cancel
        </button>
        <button type="button" class="danger" onClick={confirm} disabled={busy}>
          {busy ? 'Undoing…' : 'Undo import'}
        </button>
      </div>
    </dialog>
  );
}
