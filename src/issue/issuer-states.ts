/**
 * The identity and principal states of each process's last grants, so a steady stream of issuance for
 * the same agent does not read them before every request. Safe only because the store asserts them
 * atomically with the record (store.ts IssuerState): a lock or revocation that landed since makes the
 * record `state_changed`, and the issuer forgets what it remembered and decides again on fresh reads.
 * Only states the store confirmed at a grant are remembered: never a locked identity, never a refusal.
 * Bounded: past `maxEntries`, the oldest entry goes (a miss only costs a read).
 */
import type { IdentityState, IssuerState, Store } from '../store/store.js';

export class IssuerStates {
  private identities = new Map<string, number>();
  private principals = new Map<string, number>();
  constructor(private readonly maxEntries = 10_000) {}

  /** The identity's state: remembered, or read from the store. */
  async identity(store: Store, id: string): Promise<IdentityState> {
    const rb = this.identities.get(id);
    return rb === undefined ? store.identityState(id) : { locked: false, revokedBefore: rb };
  }

  /** The principal's revocation cutoff: remembered, or read from the store. */
  async principal(store: Store, p: string): Promise<number> {
    return this.principals.get(p) ?? store.principalRevokedBefore(p);
  }

  /** The store confirmed these states at a grant. */
  confirmed(s: IssuerState): void {
    remember(this.identities, s.identity, s.revokedBefore, this.maxEntries);
    if (s.principal !== undefined) remember(this.principals, s.principal, s.principalCutoff, this.maxEntries);
  }

  /** The store said they changed. */
  forget(s: IssuerState): void {
    this.identities.delete(s.identity);
    if (s.principal !== undefined) this.principals.delete(s.principal);
  }
}

function remember(m: Map<string, number>, k: string, v: number, max: number): void {
  if (!m.has(k) && m.size >= max) m.delete(m.keys().next().value!);
  m.set(k, v);
}
