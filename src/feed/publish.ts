/**
 * Revocation events: one compact event per revocation (closing a task is one event, not one per
 * token), appended to the store's feed stream that every replica writes and reads. Events older than
 * the longest credential lifetime can go: they only concern credentials that have expired.
 *
 * Ordering rule: an event that makes credentials inactive is published *before* the state change, so a
 * failure in between errs on the closed side (verifiers refuse, the caller retries); an event that
 * lifts a restriction (identity.unlocked) is published *after* it.
 */
import type { Broker } from '../broker.js';
import type { OnceKey } from '../store/store.js';

export type RevocationType = 'task.closed' | 'identity.locked' | 'identity.unlocked' | 'principal.revoked' | 'token.revoked' | 'certificate.revoked';

export interface RevocationSubject {
  task_id?: string;
  identity?: string;
  principal?: string;
  jti?: string;
  serial?: string;
  /** Why, when it follows from another revocation (a token revoked with the certificate that attested it). */
  reason?: string;
  revoked_before?: number; // ms
}

/** How long feed events matter: the longest a credential can live, plus a minute of margin. */
export function feedWindowMs(b: Broker): number {
  return b.config.tokens.maxTtlMs + 60_000;
}

/**
 * Publishes one event. With `once`, only the first publication for its key is made (null for a later
 * one, on any replica): concurrent revocations of one token or serial tell the feed once.
 */
export async function publishRevocation(b: Broker, type: RevocationType, subject: RevocationSubject, once?: OnceKey): Promise<string | null> {
  const now = b.clock.now();
  const event: Record<string, string> = { type, at: new Date(now).toISOString() };
  for (const [k, v] of Object.entries(subject)) {
    if (v === undefined) continue;
    event[k] = k === 'revoked_before' ? new Date(v as number).toISOString() : String(v);
  }
  const id = await b.store.appendRevocation(event, feedWindowMs(b), once);
  if (id !== null) b.feed.published(id);
  return id;
}
