/** Picks the Store implementation from configuration; the rest of the broker only sees `Store`. */
import type { Clock } from '../clock.js';
import { MemoryStore } from './memory/memory-store.js';
import { RedisStore } from './redis/redis-store.js';
import type { Store } from './store.js';

export type StoreConfig =
  | { kind: 'memory'; auditMaxLen?: number }
  | { kind: 'redis'; url: string; prefix?: string; auditMaxLen?: number }
  | { kind: 'redis'; cluster: string[]; prefix?: string; auditMaxLen?: number };

/** The clock only drives MemoryStore's expiry; Redis expires keys on the server's clock. */
export function createStore(cfg: StoreConfig, clock?: Clock): Store {
  if (cfg.kind === 'memory') {
    return new MemoryStore({ clock, auditMaxLen: cfg.auditMaxLen });
  }
  return new RedisStore({ ...('cluster' in cfg ? { cluster: cfg.cluster } : { url: cfg.url }), prefix: cfg.prefix, auditMaxLen: cfg.auditMaxLen });
}

export type { Store } from './store.js';
export { MemoryStore } from './memory/memory-store.js';
export { RedisStore } from './redis/redis-store.js';
