/**
 * The hottest call, `POST /v1/certificates` with a JSON body and a Bearer attestation, answered on
 * node:http directly: @hono/node-server's Request/Response emulation costs ~40-60 µs a request on this
 * route (measured against a bare node:http handler of the same shape), a tenth of a certificate. Only
 * a request this path takes whole comes here: the exact path, `application/json`, a declared length
 * within `limits.body_bytes`, no transfer or content coding; anything else (a DER body, mTLS without a
 * header, chunked, oversized, another method) goes to the hono app, which answers it as before. Both
 * share the route's parts (routes/certificates.ts), the JSON reader (body.ts) and the error mapping
 * (errors.ts), so the answers are the same.
 */
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import type { Broker } from '../broker.js';
import { answerFor, writeJson } from './errors.js';
import { lengthWithin } from './body-limit.js';
import { decodeUtf8, parseJsonObject } from './body.js';
import { bearerProof, certificateAsk, certificateFor, CERTIFICATE_FIELDS, jsonRequest } from './routes/certificates.js';

const PATH = '/v1/certificates';

/** Whether the request is one this path answers whole. */
function takes(req: IncomingMessage, maxBytes: number): boolean {
  if (req.method !== 'POST' || req.url !== PATH) return false;
  const h = req.headers;
  if (h['transfer-encoding'] !== undefined || h['content-encoding'] !== undefined || h['content-type'] !== 'application/json') return false;
  const len = h['content-length'];
  if (len === undefined || !lengthWithin(len, maxBytes)) return false;
  return typeof h.authorization === 'string' && /^Bearer /i.test(h.authorization) && !repeated(req.rawHeaders);
}

/**
 * Whether Authorization, Content-Type or Content-Length came more than once: Node keeps the first of
 * each, the hono app sees them joined (and refuses them), so such a request goes there.
 */
function repeated(raw: string[]): boolean {
  let seen = 0;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    // (names of another length than these three are never lowered)
    const bit = name.length >= 12 && name.length <= 14 ? (ONCE.get(name.toLowerCase()) ?? 0) : 0;
    if (bit & seen) return true;
    seen |= bit;
  }
  return false;
}

const ONCE = new Map([
  ['authorization', 1],
  ['content-type', 2],
  ['content-length', 4],
]);

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.once('end', () => resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks)));
    req.once('error', reject);
    req.once('aborted', () => reject(new Error('aborted')));
  });
}

async function serve(b: Broker, req: IncomingMessage, res: ServerResponse): Promise<void> {
  try {
    const ask = await certificateAsk(b, async () => ({
      proof: bearerProof(req.headers.authorization),
      ...jsonRequest(parseJsonObject(decodeUtf8(await readBody(req)), CERTIFICATE_FIELDS)),
    }));
    writeJson(res, 201, { 'Cache-Control': 'no-store' }, await certificateFor(b, ask));
  } catch (e) {
    const a = answerFor(PATH, e, b.log);
    if (!res.headersSent && !res.destroyed) writeJson(res, a.status, a.headers, a.body);
  }
}

/** `next` answers every request this path does not take. */
export function withFastPath(b: Broker, next: RequestListener): RequestListener {
  const maxBytes = b.config.limits.bodyBytes;
  return (req, res) => {
    if (takes(req, maxBytes)) void serve(b, req, res);
    else next(req, res);
  };
}
