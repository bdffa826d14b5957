/**
 * Errors are mapped to HTTP once, here: MayflyError -> its status and the standard body
 * {error, error_description} (RFC 6749 §5.2, RFC 8693 §2.2.2, RFC 6750 §3). Anything unexpected is
 * logged and answered 500 without detail; store outages are 503 with a clear message.
 */
import type { ServerResponse } from 'node:http';
import type { Context } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { MayflyError } from '../errors.js';
import type { Logger } from '../audit/logger.js';

/**
 * RFC 6749 §5.2: error_description is printable ASCII without `"` and `\` (%x20-21 / %x23-5B / %x5D-7E).
 * Messages quote names and echo parts of the request: those characters become `'`, `/` and `?`.
 */
export function oauthDescription(description: string): string {
  return /^[\x20\x21\x23-\x5B\x5D-\x7E]*$/.test(description)
    ? description
    : description.replace(/"/g, "'").replace(/\\/g, '/').replace(/[^\x20\x21\x23-\x5B\x5D-\x7E]/g, '?');
}

export function errorBody(code: string, description: string) {
  return { error: code, error_description: oauthDescription(description) };
}

/**
 * The challenge of a 401: Basic at the OAuth endpoints, and wherever a client's Basic credentials were
 * refused (an operator's Bearer token is offered there too); else Bearer, with an RFC 6750 §3.1 code
 * (a refused credential is invalid_token), and no code at all when none was presented.
 */
function challenge(path: string, e: MayflyError): string {
  if (path.startsWith('/oauth/')) return 'Basic realm="mayfly"';
  if (e.code === 'invalid_client') return 'Basic realm="mayfly", Bearer realm="mayfly"';
  if (e.reason === 'no_credentials') return 'Bearer realm="mayfly"';
  return `Bearer realm="mayfly", error="${e.code === 'invalid_request' ? 'invalid_request' : 'invalid_token'}"`;
}

/** An error answer: its status, headers and standard body, whichever HTTP path sends it. */
export interface ErrorAnswer {
  status: number;
  headers: Record<string, string>;
  body: ReturnType<typeof errorBody>;
}

export function errorAnswer(path: string, e: MayflyError): ErrorAnswer {
  const headers: Record<string, string> = { 'Cache-Control': 'no-store' };
  if (e.status === 401) headers['WWW-Authenticate'] = challenge(path, e);
  if (e.status === 503) headers['Retry-After'] = '1';
  return { status: e.status, headers, body: errorBody(e.code, e.message) };
}

/** Anything thrown while answering `path`, as an answer (logged when it is not the caller's error). */
export function answerFor(path: string, err: unknown, log: Logger): ErrorAnswer {
  if (err instanceof MayflyError) return errorAnswer(path, err);
  const e = err as NodeJS.ErrnoException;
  // the client closed its connection before its request had arrived: nobody reads the answer, and it
  // is not the broker's error (never an error-level line any client can write at will)
  if (e.message === 'aborted' || e.code === 'ECONNRESET') {
    log.info({ path }, 'client went away before its request arrived');
    return { status: 400, headers: { 'Cache-Control': 'no-store' }, body: errorBody('invalid_request', 'request aborted by the client') };
  }
  log.error({ err: { message: e.message, stack: e.stack }, path }, 'unhandled error');
  return { status: 500, headers: { 'Cache-Control': 'no-store' }, body: errorBody('server_error', 'internal error') };
}

/** A JSON answer on a bare node:http response (the fast path, what the server answers before the app), with the headers the app's answers carry. */
export function writeJson(res: ServerResponse, status: number, headers: Record<string, string>, body: unknown): void {
  const json = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json', 'X-Content-Type-Options': 'nosniff', ...headers, 'Content-Length': Buffer.byteLength(json) });
  res.end(json);
}

const send = (c: Context, a: ErrorAnswer): Response => c.json(a.body, a.status as ContentfulStatusCode, a.headers);

export function sendError(c: Context, e: MayflyError): Response {
  return send(c, errorAnswer(c.req.path, e));
}

export function onError(log: Logger) {
  return (err: Error, c: Context): Response => send(c, answerFor(c.req.path, err, log));
}
