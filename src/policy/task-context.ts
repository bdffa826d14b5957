/** What the task-opening rules look at. */
import type { Identity } from '../attest/attestation.js';
import type { Config } from '../config/config.js';
import type { IdentityState, TaskSpec } from '../store/store.js';

export type Opener = { kind: 'operator'; name: string } | { kind: 'workload'; identity: Identity; identityState: IdentityState };

export interface TaskOpenContext {
  opener: Opener;
  spec: TaskSpec;
  requestedTtlMs?: number;
  trustDomain: string;
  tasks: Config['tasks'];
}

export interface TaskDraft {
  ttlMs: number;
}
