/**
 * Calls to the Zinc API from the page: JSON in and out, the API token (when the server wants
 * one) as a Bearer header, and errors turned into ApiError with the API's own message.
 */

const TOKEN_KEY = 'zinc.apiToken';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** The API answered 401: the token is missing or no longer accepted. */
export class AuthRequired extends ApiError {
  constructor() {
    super(401, 'unauthorized', 'The API token is missing or was not accepted.');
  }
}

/** Whether the server wants a token (index.html carries it, so the page never has to guess with a 401). */
export function tokenRequired(): boolean {
  return document.querySelector('meta[name="zinc-auth"]')?.getAttribute('content') === 'bearer';
}

export function storedToken(): string | null {
  try {
    return sessionStorage.getItem(TOKEN_KEY);
  } catch {
    return null;
  }
}

export function storeToken(token: string | null): void {
  try {
    if (token === null) sessionStorage.removeItem(TOKEN_KEY);
    else sessionStorage.setItem(TOKEN_KEY, token);
  } catch {
    // Storage refused (private mode with no quota): the token lasts until the page is closed.
  }
  memoryToken = token;
}

let memoryToken = storedToken();
const authListeners = new Set<() => void>();

/** Called whenever the API answers 401, so the page can ask for the token again. */
export function onAuthRequired(listener: () => void): () => void {
  authListeners.add(listener);
  return () => authListeners.delete(listener);
}

function authHeaders(): Record<string, string> {
  return memoryToken ? { authorization: `Bearer ${memoryToken}` } : {};
}

async function failure(status: number, statusText: string, text: string): Promise<ApiError> {
  if (status === 401) {
    for (const listener of authListeners) listener();
    return new AuthRequired();
  }
  try {
    const body = JSON.parse(text) as { error?: string; message?: string };
    return new ApiError(status, body.error ?? 'http_error', body.message ?? `${status} ${statusText}`);
  } catch {
    return new ApiError(status, 'http_error', `${status} ${statusText || 'error'}`);
  }
}

/** GET (or another method) of an API path; the JSON answer, or an ApiError. */
export async function api<T>(path: string, init: { method?: string; signal?: AbortSignal } = {}): Promise<T> {
  let response: Response;
  try {
    // no-cache: always revalidate (answers carry an ETag, so an unchanged one is a cheap 304).
    response = await fetch(path, { ...init, headers: { accept: 'application/json', ...authHeaders() }, cache: 'no-cache' });
  } catch (error) {
    if ((error as Error).name === 'AbortError') throw error;
    throw new ApiError(0, 'network', 'The server could not be reached. Check that Zinc is running.');
  }
  const text = await response.text();
  if (!response.ok) throw await failure(response.status, response.statusText, text);
  return JSON.parse(text) as T;
}

/** A query string from parameters; arrays repeat the name, undefined ones are left out. */
export function query(params: Record<string, string | number | boolean | string[] | undefined | null>): string {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value === undefined || value === null) continue;
    if (Array.isArray(value)) for (const item of value) search.append(name, item);
    else search.append(name, String(value));
  }
  const text = search.toString();
  return text ? `?${text}` : '';
}

export interface UploadAnswer {
  status: number;
  body: unknown;
}

/**
 * Sends a file as the request body (text/csv) with XMLHttpRequest, which, unlike fetch, reports
 * how much of the body has gone out. Resolves with the status and JSON body of a 2xx answer.
 */
export function uploadFile(
  file: File,
  onError: 'fail' | 'skip',
  onProgress: (sent: number, total: number) => void,
): { done: Promise<UploadAnswer>; abort: () => void } {
  const xhr = new XMLHttpRequest();
  const url = `/api/imports/${query({ async: true, on_error: onError, filename: file.name })}`;
  const done = new Promise<UploadAnswer>((resolve, reject) => {
    xhr.open('POST', url);
    xhr.setRequestHeader('content-type', 'text/csv');
    xhr.setRequestHeader('accept', 'application/json');
    for (const [name, value] of Object.entries(authHeaders())) xhr.setRequestHeader(name, value);
    xhr.upload.onprogress = (event) => onProgress(event.loaded, event.lengthComputable ? event.total : file.size);
    xhr.onerror = () => reject(new ApiError(0, 'network', 'The upload was cut off. Check that Zinc is running and try again.'));
    xhr.onabort = () => reject(new ApiError(0, 'aborted', 'The upload was cancelled.'));
    xhr.onload = () => {
      if (xhr.status >= 200 && xhr.status < 300) {
        try {
          resolve({ status: xhr.status, body: JSON.parse(xhr.responseText) });
        } catch {
          reject(new ApiError(xhr.status, 'http_error', 'The server answered something that is not JSON.'));
        }
      } else {
        failure(xhr.status, xhr.statusText, xhr.responseText).then(reject, reject);
      }
    };
    xhr.send(file);
  });
  return { done, abort: () => xhr.abort() };
}

/** The service's own health (outside /api: no token). */
export async function fetchHealth(): Promise<{ ok: boolean; database: string; engine?: string }> {
  try {
    const response = await fetch('/health', { cache: 'no-store', headers: { accept: 'application/json' } });
    const body = (await response.json()) as { status?: string; database?: string; engine?: string };
    return { ok: response.ok && body.status === 'ok', database: body.database ?? `${response.status}`, engine: body.engine };
  } catch {
    return { ok: false, database: 'the server does not answer' };
  }
}
