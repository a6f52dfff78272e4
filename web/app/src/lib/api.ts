// The API over fetch, on the pages' own origin: JSON in and out (files go up as bytes), the
// session's bearer token, one refresh when the access token has expired, and RFC 9457
// problems as `ApiError`s that name the field the API refused.

import { session, type Session } from './session';

/** A problem the API answered with. `field` names the member or parameter it refused. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly title: string,
    readonly detail: string | undefined,
    readonly field: string | undefined,
  ) {
    super(detail ? `${title}: ${detail}` : title);
    this.name = 'ApiError';
  }
}

type Method = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

export interface CallOptions {
  /** Money-moving or creating calls: a fresh `Idempotency-Key`, reused if the call is retried. */
  idempotencyKey?: string;
  /** Calls that need no session (sign-in, public reads). */
  anonymous?: boolean;
}

async function send(method: Method, path: string, body: unknown, options: CallOptions, token?: string): Promise<Response> {
  const headers: Record<string, string> = { accept: 'application/json, application/problem+json' };
  // A file (an upload) goes as its own bytes; anything else as JSON.
  const raw = body instanceof Blob;
  if (raw) headers['content-type'] = body.type || 'application/octet-stream';
  else if (body !== undefined) headers['content-type'] = 'application/json';
  if (token) headers.authorization = `Bearer ${token}`;
  if (options.idempotencyKey) headers['idempotency-key'] = options.idempotencyKey;
  return fetch(path, { method, headers, body: raw ? body : body === undefined ? undefined : JSON.stringify(body) });
}

async function problem(res: Response): Promise<ApiError> {
  let doc: { title?: string; detail?: string; field?: string } = {};
  try {
    doc = await res.json();
  } catch {
    // not a problem document: the status says enough
  }
  return new ApiError(res.status, doc.title ?? `${res.status} ${res.statusText}`, doc.detail, doc.field);
}

/** Sends with the session's token, refreshing it once if the server says it expired. */
async function authorized(method: Method, path: string, body: unknown, options: CallOptions): Promise<Response> {
  let current: Session | null = options.anonymous ? null : session.current();
  const res = await send(method, path, body, options, current?.accessToken);
  if (res.status !== 401 || !current) return res;
  // The access token lasts minutes; the refresh token, days. One refresh, one retry.
  current = await session.refresh();
  if (!current) throw new ApiError(401, 'Your session has ended: sign in again', undefined, undefined);
  return send(method, path, body, options, current.accessToken);
}

/** Calls the API; returns the parsed body (undefined for 204). */
export async function call<T>(method: Method, path: string, body?: unknown, options: CallOptions = {}): Promise<T> {
  const res = await authorized(method, path, body, options);
  if (!res.ok) throw await problem(res);
  if (res.status === 204) return undefined as T;
  return (await res.json()) as T;
}

/** A file the API serves (a CSV export): its bytes and the name the server gave it. */
export async function download(path: string): Promise<{ name: string; blob: Blob }> {
  const res = await authorized('GET', path, undefined, {});
  if (!res.ok) throw await problem(res);
  const name = /filename="([^"]+)"/.exec(res.headers.get('content-disposition') ?? '')?.[1] ?? 'download';
  return { name, blob: await res.blob() };
}

export const api = {
  get: <T>(path: string, options?: CallOptions) => call<T>('GET', path, undefined, options),
  post: <T>(path: string, body: unknown, options?: CallOptions) => call<T>('POST', path, body, options),
  put: <T>(path: string, body: unknown, options?: CallOptions) => call<T>('PUT', path, body, options),
  patch: <T>(path: string, body: unknown, options?: CallOptions) => call<T>('PATCH', path, body, options),
  delete: <T>(path: string, options?: CallOptions) => call<T>('DELETE', path, undefined, options),
};

/**
 * Reads every `every` ms until `done` accepts the answer, for at most `within` ms: the chain
 * mirror and the relayer catch up with a transaction in seconds. The last answer, and
 * whether `done` accepted it.
 */
export async function poll<T>(
  read: () => Promise<T>,
  done: (answer: T) => boolean,
  within: number,
  every = 400,
): Promise<{ answer: T; done: boolean }> {
  const until = Date.now() + within;
  for (;;) {
    const answer = await read();
    if (done(answer)) return { answer, done: true };
    if (Date.now() + every > until) return { answer, done: false };
    await new Promise((r) => setTimeout(r, every));
  }
}

/** A key for one intended action: made once per form submission, reused by its retries. */
export const idempotencyKey = (): string => crypto.randomUUID();
