/**
 * Reading the feed: from a cursor, or as a snapshot of the whole current revocation state (every event
 * still in the window, plus the identities locked right now, whose locks outlive the window). A cursor
 * below the highest trimmed id may have missed events, and one above the newest id was never ours: its
 * reader gets a snapshot with `resync: true`.
 */
import type { Broker } from '../broker.js';
import { MayflyError } from '../errors.js';
import { compareIds, isValidStreamId, parseId } from '../store/stream-id.js';


export interface FeedEvent {
  id: string;
  type: string;
  at: string;
  [k: string]: string;
}

export interface FeedPage {
  events: FeedEvent[];
  cursor: string;
  resync: boolean;
  more: boolean;
}

const toEvent = (e: { id: string; event: Record<string, string> }): FeedEvent => ({ ...e.event, id: e.id }) as FeedEvent;

/**
 * The reader must resync from a snapshot: events after `cursor` may have been trimmed, or the cursor is
 * ahead of anything this feed has written (not one of its cursors: another store, or made up), so
 * waiting for the feed to reach it would miss every event until then.
 */
export function isStale(cursor: string, maxDeleted: string, latest: string): boolean {
  const c = parseId(cursor);
  return compareIds(c, parseId(maxDeleted)) < 0 || compareIds(c, parseId(latest)) > 0;
}

export async function readFeed(b: Broker, since: string | undefined, limit: number): Promise<FeedPage> {
  const at = await b.store.revocationCursor();
  const page = since === undefined ? undefined : await readAfter(b, since, limit, at);
  return page ?? snapshot(b, limit, at.latest);
}

/** Events after `since`, or undefined when its reader must resync (isStale). */
export async function readAfter(b: Broker, since: string, limit: number, at?: { latest: string; maxDeleted: string }): Promise<FeedPage | undefined> {
  if (!isValidStreamId(since)) throw new MayflyError('invalid_request', 'since must be a cursor returned by this feed', { reason: 'malformed_request' });
  const { latest, maxDeleted } = at ?? (await b.store.revocationCursor());
  if (isStale(since, maxDeleted, latest)) return undefined;
  // one more than asked: `more` says whether anything follows, not merely that the page is full
  const rows = await b.store.readRevocations(since, limit + 1);
  const more = rows.length > limit;
  if (more) rows.pop();
  return { events: rows.map(toEvent), cursor: rows.at(-1)?.id ?? since, resync: false, more };
}

/**
 * How long one whole snapshot serves every stream that starts: a snapshot is the state up to its
 * cursor, and each stream goes on from that cursor, so an older one is as correct as a fresh one
 * while its cursor is still in the window. Shared, a thousand verifiers reconnecting at once (after a
 * deploy, a network blip) cost one read of the window and one JSON string, not a thousand of each.
 */
const SHARE_MS = 1000;
const PAGE = 1000;
const shared = new WeakMap<Broker, { at: number; snapshot: Promise<{ cursor: string; data: string }> }>();

/** The whole snapshot as a stream sends it (its `data`, serialized once), shared for SHARE_MS. */
export function sharedSnapshot(b: Broker): Promise<{ cursor: string; data: string }> {
  const s = shared.get(b);
  if (s && Date.now() - s.at < SHARE_MS) return s.snapshot;
  const whole = (async () => {
    for (;;) {
      const first = await snapshot(b, PAGE, (await b.store.revocationCursor()).latest);
      const events = first.events;
      let { cursor, more } = first;
      while (more) {
        const next = await readAfter(b, cursor, PAGE);
        if (!next) break; // trimmed past the cursor while reading (the window moved on): read it again
        events.push(...next.events);
        cursor = next.cursor;
        more = next.more;
      }
      if (!more) return { cursor, data: JSON.stringify({ events, cursor }) };
    }
  })();
  const entry = { at: Date.now(), snapshot: whole };
  shared.set(b, entry);
  // a failed read is nobody's snapshot: the next stream reads again
  whole.catch(() => shared.get(b) === entry && shared.delete(b));
  return whole;
}

async function snapshot(b: Broker, limit: number, latest: string): Promise<FeedPage> {
  const [locks, rows] = await Promise.all([b.store.lockedIdentities(), b.store.readRevocations('', limit + 1)]);
  const more = rows.length > limit;
  if (more) rows.pop();
  const lockEvents: FeedEvent[] = locks.map((l) => ({
    id: '0-0',
    type: 'identity.locked',
    at: new Date(l.lockedAt ?? l.revokedBefore).toISOString(),
    identity: l.identity,
    revoked_before: new Date(l.revokedBefore).toISOString(),
  }));
  const cursor = rows.at(-1)?.id ?? latest;
  return { events: [...lockEvents, ...rows.map(toEvent)], cursor, resync: true, more };
}
