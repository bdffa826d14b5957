/** What the token-exchange rules look at, and the draft credential they narrow. */
import type { Identity } from '../attest/attestation.js';
import type { Config } from '../config/config.js';
import type { IdentityState, TaskRecord } from '../store/store.js';
import type { TaskStatus } from '../revoke/task-status.js';

export interface ExchangeContext {
  identity: Identity;
  identityState: IdentityState;
  task: TaskRecord | null;
  taskStatus: TaskStatus | null;
  requested: { scopes?: string[]; tools?: string[]; audiences?: string[] };
  /** Delegation (RFC 8693 actor_token): the active token the new one is derived from; one more ceiling. */
  parent?: DelegationParent;
  now: number;
  tokens: Config['tokens'];
}

export interface ExchangeDraft {
  scopes: string[];
  tools: string[];
  audiences: string[];
  ttlMs: number;
}

export interface DelegationParent {
  /** The agent that holds the parent token. */
  clientId: string;
  scopes: string[];
  tools: string[];
  audiences: string[];
  /** Its expiry (ms): a delegated token never outlives it. */
  expMs: number;
  /** Sender-constrained (cnf): the actor cannot prove the parent's key, so it cannot be delegated. */
  bound: boolean;
  /** How many delegations it already is from an attested grant (0 for a direct grant). */
  depth: number;
  /** RFC 8693 §4.4 `may_act`: the actors (SPIFFE IDs or `/*` prefixes) it may go to; undefined: any agent of the task. */
  mayAct?: string[];
}
