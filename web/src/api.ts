/**
 * Calls to the Zinc API from the page, through the typed client generated from the served OpenAPI
 * document (client/): the API token (when the server wants one) as a Bearer header, and errors
 * turned into ApiError with the API's own message.
 */
import { createQuerySerializer } from 'openapi-fetch';
import { apiError, createZincClient, unwrap, ZincApiError, type Answer, type FileResult, type Query } from '../../client/index.js';

export { ZincApiError as ApiError };

const TOKEN_KEY = 'zinc.apiToken';

/** The API answered 401: the token is missing or no longer accepted. */
export class AuthRequired extends ZincApiError {
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

/** The API with this tab's token; no-cache: always revalidate (answers carry an ETag, so an unchanged one is a cheap 304). */
export const client = createZincClient({ token: () => memoryToken, cache: 'no-cache' });

function unauthorized(): AuthRequired {
  for (const listener of authListeners) listener();
  return new AuthRequired();
}

/**
 * The data of a call of the client, or an ApiError with the API's message: AuthRequired on 401
 * (after telling onAuthRequired's listeners), status 0 when the server could not be reached. An
 * aborted call rejects with the AbortError.
 */
export async function call<T>(pending: Promise<{ data?: T; error?: unknown; response: Response }>): Promise<T> {
  try {
    return await unwrap(pending);
  } catch (error) {
    if (error instanceof ZincApiError && error.status === 401) throw unauthorized();
    // fetch rejects with a TypeError when no answer comes (the server is down, the network is cut).
    if (error instanceof TypeError) throw new ZincApiError(0, 'network', 'The server could not be reached. Check that Zinc is running.');
    throw error;
  }
}

/** An upload's answer: done at once (or skipped as already imported), or accepted and still processing. */
export type UploadAnswer =
  | { status: 200; body: FileResult }
  | { status: 202; body: Answer<'/api/imports', 'post', 202> };

const uploadQuery = createQuerySerializer<Query<'/api/imports', 'post'>>();

/**
 * Sends a file as the request body (text/csv) with XMLHttpRequest, which, unlike fetch, reports
 * how much of the body has gone out. Resolves with the status and JSON body of a 2xx answer.
 */
export function uploadFile(
  file: File,
  onError: NonNullable<Query<'/api/imports', 'post'>['on_error']>,
  onProgress: (sent: number, total: number) => void,
): { done: Promise<UploadAnswer>; abort: () => void } {
  const xhr = new XMLHttpRequest();
  const url = `/api/imports?${uploadQuery({ async: true, on_error: onError, filename: file.name })}`;
  const done = new Promise<UploadAnswer>((resolve, reject) => {
    xhr.open('POST', url);
    xhr.setRequestHeader('content-type', 'text/csv');
    xhr.setRequestHeader('accept', 'application/json');
    for (const [name, value] of Object.entries(authHeaders())) xhr.setRequestHeader(name, value);
    xhr.upload.onprogress = (event) => onProgress(event.loaded, event.lengthComputable ? event.total : file.size);
    xhr.onerror = () => reject(new ZincApiError(0, 'network', 'The upload was cut off. Check that Zinc is running and try again.'));
    xhr.onabort = () => reject(new ZincApiError(0, 'aborted', 'The upload was cancelled.'));
    xhr.onload = () => {
      let body: unknown;
      try {
        body = JSON.parse(xhr.responseText);
      } catch {
        body = undefined;
      }
      if (xhr.status === 401) reject(unauthorized());
      else if (xhr.status < 200 || xhr.status >= 300) reject(apiError(xhr, body));
      else if (body === undefined) reject(new ZincApiError(xhr.status, 'http_error', 'The server answered something that is not JSON.'));
      else if (xhr.status === 202) resolve({ status: 202, body: body as Answer<'/api/imports', 'post', 202> });
      else resolve({ status: 200, body: body as FileResult });
    };
    xhr.send(file);
  });
  return { done, abort: () => xhr.abort() };
}

/** The service's own health (outside /api: no token). */
export async function fetchHealth(): Promise<{ ok: boolean; database: string; engine?: string }> {
  try {
    const { data, error, response } = await client.GET('/health', { cache: 'no-store' });
    const body = data ?? (typeof error === 'object' ? error : undefined);
    return { ok: response.ok && body?.status === 'ok', database: body?.database ?? `${response.status}`, engine: body?.engine };
  } catch {
    return { ok: false, database: 'the server does not answer' };
  }
}
