/**
 * Requests Node refuses before the app sees them (headers over 16 KiB, a malformed request line, a
 * request that did not arrive in time, CONNECT, an HTTP/1.1 request without Host) get the standard
 * error body too, not Node's bare status line or a closed connection.
 * As Node's own handler does, nothing is written to a connection that is gone or already answering.
 */
import { STATUS_CODES, type IncomingMessage, type RequestListener, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { errorBody, writeJson } from './errors.js';
import { bodyTooLarge, lengthWithin } from './body-limit.js';

type ClientError = Error & { code?: string };

function answerFor(err: ClientError): [number, string, string] {
  if (err.code === 'HPE_HEADER_OVERFLOW') return [431, 'invalid_request', 'request header fields too large (at most 16 KiB in all)'];
  if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') return [408, 'request_timeout', 'the request did not arrive in time'];
  return [400, 'invalid_request', 'malformed HTTP request'];
}

/** A whole answer with the standard error body, written on the socket itself, which is then closed. */
function answerRaw(socket: Duplex, status: number, code: string, description: string): void {
  const body = JSON.stringify(errorBody(code, description));
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` +
      `Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\nConnection: close\r\n\r\n${body}`,
  );
}

type RawEvents = {
  on(event: 'clientError', fn: (err: ClientError, socket: Duplex) => void): unknown;
  on(event: 'connect', fn: (req: IncomingMessage, socket: Duplex) => void): unknown;
};

export function answerClientErrors(server: RawEvents): void {
  server.on('clientError', (err: ClientError, socket: Duplex) => {
    const answering = (socket as Duplex & { _httpMessage?: { headersSent?: boolean } })._httpMessage?.headersSent;
    // a TLS handshake that failed or timed out (https.Server passes those on here): no HTTP was spoken
    // on it, so nothing to answer, and a listener must close what it does not answer
    const tlsHandshake = /^ERR_(TLS|SSL)_/.test(err.code ?? '');
    if (err.code === 'ECONNRESET' || tlsHandshake || !socket.writable || answering) {
      socket.destroy();
      return;
    }
    const [status, code, description] = answerFor(err);
    answerRaw(socket, status, code, description);
  });
  // (without a listener Node closes the connection without a word)
  server.on('connect', (_req, socket) => {
    if (socket.writable) answerRaw(socket, 501, 'invalid_request', 'CONNECT is not served: the broker is no proxy');
    else socket.destroy();
  });
}

/** How many Host fields the request has (Node keeps only the first in `headers`). */
function hostFields(raw: string[]): number {
  let n = 0;
  for (let i = 0; i < raw.length; i += 2) if (raw[i]!.length === 4 && raw[i]!.toLowerCase() === 'host') n++;
  return n;
}

/** A refusal on a bare node:http response, and the connection closed after it. */
const refuse = (res: ServerResponse, status: number, body: ReturnType<typeof errorBody>) => writeJson(res, status, { 'Cache-Control': 'no-store', Connection: 'close' }, body);

/**
 * RFC 9112 section 3.2: an HTTP/1.1 request without Host, or with more than one, is answered 400, here
 * with the standard body (the server is made with `requireHostHeader: false`, where Node would answer
 * the first bare and serve the second). A request for `*` (asterisk-form, RFC 9112 section 3.2.4) is
 * OPTIONS of the server itself: 204 with the methods it serves; any other method for it is 400.
 */
export function requireHost(next: RequestListener): RequestListener {
  const bad = (res: ServerResponse, description: string) => refuse(res, 400, errorBody('invalid_request', description));
  return (req, res) => {
    const hosts = hostFields(req.rawHeaders);
    if (hosts === 0 && req.httpVersion === '1.1') bad(res, 'an HTTP/1.1 request needs a Host header (RFC 9112 section 3.2)');
    else if (hosts > 1) bad(res, 'more than one Host header (RFC 9112 section 3.2)');
    else if (req.url === '*') {
      if (req.method === 'OPTIONS') res.writeHead(204, { Allow: 'DELETE, GET, HEAD, OPTIONS, POST', 'Cache-Control': 'no-store' }).end();
      else bad(res, `the request target * goes with OPTIONS only, not ${req.method}`);
    } else next(req, res);
  };
}

/**
 * `Expect` (RFC 9110 §10.1.1): `100-continue` is answered 100 only for a body the broker would read
 * (a declared length within `maxBytes`), else 413 at once, so a client does not send a body it will
 * not take; any other expectation is 417. Both with the standard error body.
 */
export function answerExpectations(
  server: { on(event: 'checkContinue' | 'checkExpectation', fn: (req: IncomingMessage, res: ServerResponse) => void): unknown; emit(event: 'request', req: IncomingMessage, res: ServerResponse): boolean },
  maxBytes: number,
): void {
  server.on('checkContinue', (req, res) => {
    const len = req.headers['content-length'];
    if (len !== undefined && !lengthWithin(len, maxBytes)) return refuse(res, 413, bodyTooLarge(maxBytes));
    res.writeContinue();
    server.emit('request', req, res);
  });
  server.on('checkExpectation', (_req, res) => refuse(res, 417, errorBody('invalid_request', 'the only expectation answered is 100-continue')));
}
