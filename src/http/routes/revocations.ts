/**
 * The revocation feed for resource servers (configured clients with HTTP Basic, or operators):
 * GET /v1/revocations?since=<cursor>&limit=<n> -> {events, cursor, resync, more}
 * GET /v1/revocations/stream -> Server-Sent Events with `id:` cursors, Last-Event-ID resume,
 * a `snapshot` message when the reader has no (or a stale) cursor, and heartbeat comments.
 * When the store cannot be read the stream ends (after an `error` event) rather than go quiet:
 * a verifier must see the gap and fail closed, never mistake silence for "nothing revoked".
 */
import type { Hono } from 'hono';
import { streamSSE } from 'hono/streaming';
import type { Broker } from '../../broker.js';
import { MayflyError } from '../../errors.js';
import { rejectRepeated } from '../query.js';
import { isStale, readAfter, readFeed, sharedSnapshot } from '../../feed/read.js';
import { isValidStreamId } from '../../store/stream-id.js';
import { requireClientOrOperator } from '../auth.js';

const PAGE = 1000;

function limitOf(raw: string | undefined): number {
  if (raw === undefined) return PAGE;
  if (!/^\d{1,5}$/.test(raw) || Number(raw) < 1 || Number(raw) > 10_000)
    throw new MayflyError('invalid_request', 'limit must be 1-10000', { reason: 'malformed_request' });
  return Number(raw);
}

export function revocationRoutes(app: Hono, b: Broker): void {
  app.get('/v1/revocations', async (c) => {
    requireClientOrOperator(b, c);
    rejectRepeated(c, ['since', 'limit']);
    const page = await readFeed(b, c.req.query('since'), limitOf(c.req.query('limit')));
    return c.json(page, 200, { 'Cache-Control': 'no-store' });
  });

  app.get('/v1/revocations/stream', async (c) => {
    requireClientOrOperator(b, c);
    rejectRepeated(c, ['since']);
    // as the poll reads it: an empty ?since= is no cursor of ours (an empty Last-Event-ID is none, per SSE)
    if (c.req.query('since') === '') throw new MayflyError('invalid_request', 'since must be a cursor from this feed', { reason: 'malformed_request' });
    const since = c.req.header('last-event-id') || c.req.query('since') || undefined;
    if (since !== undefined && !isValidStreamId(since)) throw new MayflyError('invalid_request', 'Last-Event-ID / since must be a cursor from this feed', { reason: 'malformed_request' });
    // read before streaming so a store outage is a plain 503, not a broken stream; a reader without a
    // (current) cursor gets the snapshot every stream starting about now shares (feed/read.ts)
    const after = since === undefined ? undefined : await readAfter(b, since, PAGE);
    const snapshot = after ? undefined : await sharedSnapshot(b);
    c.header('Cache-Control', 'no-store');
    c.header('X-Accel-Buffering', 'no');
    return streamSSE(c, async (stream) => {
      let open = true;
      stream.onAbort(() => {
        open = false;
      });
      let cursor: string;
      if (snapshot) {
        // the whole snapshot, however many pages it spans, as one message
        cursor = snapshot.cursor;
        await stream.writeSSE({ event: 'snapshot', id: cursor, data: snapshot.data });
      } else {
        cursor = after!.cursor;
        for (const e of after!.events) await stream.writeSSE({ event: e.type, id: e.id, data: JSON.stringify(e) });
      }
      // a heartbeat at once after the snapshot or the replay (and what the tail adds to it): the reader
      // knows it has caught up (the SDK counts a resumed mirror current from there, not from the headers)
      let lastBeat = 0;
      while (open) {
        try {
          let rows = b.feed.since(cursor); // the process's tail already read them: no Redis round trip
          if (!rows) {
            const { maxDeleted, latest } = await b.store.revocationCursor();
            if (isStale(cursor, maxDeleted, latest)) {
              await stream.writeSSE({ event: 'resync', data: JSON.stringify({ error: 'resync_required', error_description: 'events were trimmed; reconnect without a cursor' }) });
              break;
            }
            rows = await b.store.readRevocations(cursor, PAGE);
          }
          for (const r of rows) {
            await stream.writeSSE({ event: r.event.type ?? 'revocation', id: r.id, data: JSON.stringify({ ...r.event, id: r.id }) });
            cursor = r.id;
          }
          if (rows.length === PAGE) continue;
        } catch {
          await stream.writeSSE({ event: 'error', data: JSON.stringify({ error: 'temporarily_unavailable', error_description: 'credential store unreachable' }) });
          break;
        }
        if (Date.now() - lastBeat >= b.config.feed.heartbeatMs) {
          await stream.write(': hb\n\n');
          lastBeat = Date.now();
        }
        await b.feed.wait(cursor, Math.max(50, b.config.feed.heartbeatMs - (Date.now() - lastBeat)));
      }
    });
  });
}
