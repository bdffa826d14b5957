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

export type RevocationType = 'task.closed' | 'identity.locked' | 'identity.unlocked' | 'principal.revoked' | 'token.revoked' | 'certificate.revoked';

export interface RevocationSubject {
  task_id?: string;
  identity?: string;
  principal?: string;
  jti?: string;
  serial?: string;
  revoked_before?: number; // ms
}

/** How long feed events matter: the longest a credential can live, plus a minute of margin. */
export function feedWindowMs(b: Broker): number {
  return b.config.tokens.maxTtlMs + 60_000;
}

export async function publishRevocation(b: Broker, type: RevocationType, subject: RevocationSubject): Promise<string> {
  const now = b.clock.now();
  const event: Record<string, string> = { type, at: new Date(now).toISOString() };
  for (const [k, v] of Object.entries(subject)) {
    if (v === undefined) continue;
    event[k] = k === 'revoked_before' ? new Date(v as number).toISOString() : String(v);
  }
  const id = await b.store.appendRevocation(event, feedWindowMs(b));
  b.feed.published(id);
  return id;
}
