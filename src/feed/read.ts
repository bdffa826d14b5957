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
  if (since !== undefined && !isValidStreamId(since)) throw new MayflyError('invalid_request', 'since must be a cursor returned by this feed', { reason: 'malformed_request' });
  const { latest, maxDeleted } = await b.store.revocationCursor();
  if (since !== undefined && !isStale(since, maxDeleted, latest)) {
    const rows = await b.store.readRevocations(since, limit);
    return { events: rows.map(toEvent), cursor: rows.at(-1)?.id ?? since, resync: false, more: rows.length === limit };
  }
  return snapshot(b, limit, latest);
}

async function snapshot(b: Broker, limit: number, latest: string): Promise<FeedPage> {
  const [locks, rows] = await Promise.all([b.store.lockedIdentities(), b.store.readRevocations('', limit)]);
  const lockEvents: FeedEvent[] = locks.map((l) => ({
    id: '0-0',
    type: 'identity.locked',
    at: new Date(l.lockedAt ?? l.revokedBefore).toISOString(),
    identity: l.identity,
    revoked_before: new Date(l.revokedBefore).toISOString(),
  }));
  const more = rows.length === limit;
  const cursor = rows.at(-1)?.id ?? latest;
  return { events: [...lockEvents, ...rows.map(toEvent)], cursor, resync: true, more };
}
