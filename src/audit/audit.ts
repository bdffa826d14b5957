/**
 * Audit: every grant, denial (with its reason), task open/close and revocation becomes one structured
 * pino line and one entry in the store's bounded audit stream (a Redis stream on Redis). Events carry
 * identifiers (jti, task id, SPIFFE IDs), never tokens or secrets.
 */
import type { Logger } from './logger.js';
import type { Store } from '../store/store.js';

export type AuditEventType =
  | 'token.granted'
  | 'token.denied'
  | 'token.revoked'
  | 'task.opened'
  | 'task.denied'
  | 'task.closed'
  | 'identity.locked'
  | 'identity.unlocked'
  | 'principal.revoked'
  | 'auth.denied'
  | 'certificate.granted'
  | 'certificate.denied'
  | 'certificate.revoked'
  | 'join_token.created'
  // reported by resource servers (POST /v1/audit/usage): what was done with a token, or refused
  | 'token.used'
  | 'token.refused';

export type AuditFields = Record<string, string | number | boolean | string[] | undefined>;

export class Audit {
  constructor(
    private log: Logger,
    private store: Store,
  ) {}

  /** Records an event. Never throws: a store outage is logged, and the decision itself already failed closed. */
  record(type: AuditEventType, fields: AuditFields): void {
    this.write(type, fields).catch((e: unknown) => this.log.warn({ err: (e as Error).message, type }, 'audit event not written to store'));
  }

  /**
   * Records a grant before its credential (or task) is handed out: resolves once the store holds the
   * event; when it cannot, the credential is withheld (the caller answers 503) and that is logged, so
   * no credential ever leaves the broker without its grant in the audit trail.
   */
  async grant(type: 'token.granted' | 'certificate.granted' | 'task.opened', fields: AuditFields): Promise<void> {
    try {
      await this.write(type, fields);
    } catch (e) {
      this.log.warn({ err: (e as Error).message, type }, 'grant withheld: its audit event could not be written to the store');
      throw e;
    }
  }

  /** Records an event and resolves once the store holds it (rejects with the store's error). */
  write(type: AuditEventType, fields: AuditFields): Promise<string> {
    const e = entry(type, fields);
    this.logged(e);
    // resource servers' reports go to a log of their own: they can never crowd out the broker's decisions
    return this.store.appendAudit(e, type === 'token.used' || type === 'token.refused' ? 'usage' : 'audit');
  }

  /** The pino line of an event the store was given by another call (a certificate's grant, written with its record). */
  logged(e: AuditEntryFields): void {
    const type = e.type as AuditEventType;
    const denied = type.endsWith('.denied') || type.endsWith('.refused');
    this.log[denied ? 'warn' : 'info']({ audit: e }, type);
  }
}

/** An event as the store keeps it: `type`, then its fields as strings (lists space-separated), the undefined ones left out. */
export type AuditEntryFields = Record<string, string> & { type: string };

export function entry(type: AuditEventType, fields: AuditFields): AuditEntryFields {
  // no `at` field: the stream id carries the time (GET /v1/audit shows it), pino lines carry their own
  const flat: AuditEntryFields = { type };
  for (const [k, v] of Object.entries(fields)) {
    if (v === undefined) continue;
    flat[k] = Array.isArray(v) ? v.join(' ') : String(v);
  }
  return flat;
}
