/**
 * The in-memory revocation mirror: what the revocation feed has said, kept as a few maps so that
 * deciding whether a credential is active is a handful of lookups plus the broker's own `verdict()`
 * (src/revoke/active.ts): one definition of "active" on both sides of the wire.
 */
import { normalizeSerial } from '../../x509/peer.js';
import { verdict, type Verdict } from '../../revoke/active.js';
import { combineIdentities, type CredentialFacts, type IdentityState } from '../../store/store.js';
import type { MayflyClaims } from './result.js';

/** One event of GET /v1/revocations (and the stream). Unknown types are ignored (forward compatible). */
export interface RevocationEvent {
  id: string;
  type: string;
  at: string;
  [field: string]: unknown;
}

const NOT_LOCKED: IdentityState = { locked: false, revokedBefore: 0 };

const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);
const time = (v: unknown): number | undefined => {
  const t = typeof v === 'string' ? Date.parse(v) : typeof v === 'number' ? v : NaN;
  return Number.isFinite(t) ? t : undefined;
};

export interface MirrorCounts {
  closedTasks: number;
  revokedTokens: number;
  identities: number;
  lockedIdentities: number;
  principals: number;
  revokedCertificates: number;
}

export class RevocationMirror {
  /** task id -> when it closed (ms). */
  private closedTasks = new Map<string, number>();
  /** jti -> when it was revoked. */
  private jtis = new Map<string, number>();
  /** SPIFFE ID -> lock state; `at` for pruning unlocked records. */
  private identities = new Map<string, IdentityState & { at: number }>();
  /** principal -> revoked_before (ms). */
  private principals = new Map<string, number>();
  /** certificate serial (lowercase hex, no leading zeros) -> when it was revoked. */
  private serials = new Map<string, number>();

  /** Applies one event; returns false for an event it did not understand (ignored). */
  apply(e: RevocationEvent): boolean {
    const at = time(e.at) ?? 0;
    switch (e.type) {
      case 'task.closed': {
        const t = str(e.task_id);
        if (!t) return false;
        this.closedTasks.set(t, at);
        return true;
      }
      case 'token.revoked': {
        const j = str(e.jti);
        if (!j) return false;
        this.jtis.set(j, at);
        return true;
      }
      case 'certificate.revoked': {
        const s = str(e.serial);
        if (!s) return false;
        this.serials.set(normalizeSerial(s), at);
        return true;
      }
      case 'identity.locked':
      case 'identity.unlocked': {
        const id = str(e.identity);
        // a lock without a time revokes everything up to now: fail closed
        const before = time(e.revoked_before) ?? (e.type === 'identity.locked' ? Number.MAX_SAFE_INTEGER : 0);
        if (!id) return false;
        const locked = e.type === 'identity.locked';
        this.identities.set(id, { locked, revokedBefore: before, at, ...(locked ? { lockedAt: at } : {}) });
        return true;
      }
      case 'principal.revoked': {
        const p = str(e.principal);
        const before = time(e.revoked_before);
        if (!p || before === undefined) return false;
        this.principals.set(p, Math.max(before, this.principals.get(p) ?? 0));
        return true;
      }
      default:
        return false;
    }
  }

  applyAll(events: readonly RevocationEvent[]): void {
    for (const e of events) this.apply(e);
  }

  /** Replaces everything with another mirror's state (a snapshot, built off to the side). */
  replaceWith(other: RevocationMirror): void {
    this.closedTasks = other.closedTasks;
    this.jtis = other.jtis;
    this.identities = other.identities;
    this.principals = other.principals;
    this.serials = other.serials;
  }

  /** The facts active.ts needs, built from the token's own claims and the mirror. */
  facts(c: MayflyClaims): CredentialFacts {
    const onBehalfOf = c.act ? c.sub : undefined;
    return {
      task: {
        state: this.closedTasks.has(c.task_id) ? 'closed' : 'open',
        expiresAt: c.exp * 1000,
        createdAt: c.iat * 1000,
        onBehalfOf,
      },
      jtiRevoked: this.jtis.has(c.jti) || (c.lineage ?? []).some((l) => this.jtis.has(l.jti)),
      identity: c.lineage?.length
        ? combineIdentities([c.client_id, ...c.lineage.map((l) => l.client_id)].map((i) => this.identities.get(i) ?? NOT_LOCKED))
        : (this.identities.get(c.client_id) ?? NOT_LOCKED),
      principalRevokedBefore: onBehalfOf === undefined ? 0 : (this.principals.get(onBehalfOf) ?? 0),
    };
  }

  verdict(c: MayflyClaims, now: number): Verdict {
    return verdict(c, this.facts(c), now);
  }

  isSerialRevoked(serial: string): boolean {
    return this.serials.has(normalizeSerial(serial));
  }

  isTaskClosed(taskId: string): boolean {
    return this.closedTasks.has(taskId);
  }

  /** Drops what can no longer matter: entries older than `horizon` (never a current lock). */
  prune(horizon: number): void {
    for (const m of [this.closedTasks, this.jtis, this.serials]) for (const [k, at] of m) if (at < horizon) m.delete(k);
    for (const [k, s] of this.identities) if (!s.locked && s.revokedBefore < horizon && s.at < horizon) this.identities.delete(k);
    for (const [k, before] of this.principals) if (before < horizon) this.principals.delete(k);
  }

  counts(): MirrorCounts {
    let locked = 0;
    for (const s of this.identities.values()) if (s.locked) locked++;
    return {
      closedTasks: this.closedTasks.size,
      revokedTokens: this.jtis.size,
      identities: this.identities.size,
      lockedIdentities: locked,
      principals: this.principals.size,
      revokedCertificates: this.serials.size,
    };
  }
}

/**
 * Serials compare in the broker's form (src/x509 serialHexOf): lowercase hex of the unsigned magnitude,
 * whole bytes, no leading zero bytes. X509Certificate prints uppercase; people paste `ab:cd` or odd lengths.
 */

export { normalizeSerial };
