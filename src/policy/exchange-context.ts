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
  now: number;
  tokens: Config['tokens'];
}

export interface ExchangeDraft {
  scopes: string[];
  tools: string[];
  audiences: string[];
  ttlMs: number;
}
