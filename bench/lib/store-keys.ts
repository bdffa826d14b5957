/**
 * The broker's Redis key names (see src/store/redis/redis-store.ts) under a given prefix, and removal
 * of everything under that prefix (for runs against a shared REDIS_URL).
 */
import type { Redis } from 'ioredis';

export interface StoreKeys {
  prefix: string;
  task(id: string): string;
  creds(id: string): string;
  agents(id: string): string;
  /** `agent|exp` -> count: the task's expiry counts per agent. */
  expiries(id: string): string;
  audit: string;
}

export function storeKeys(prefix: string): StoreKeys {
  const task = (id: string) => `${prefix}task:{${id}}`;
  return { prefix, task, creds: (id) => `${task(id)}:creds`, agents: (id) => `${task(id)}:agents`, expiries: (id) => `${task(id)}:exp`, audit: `${prefix}audit` };
}

/** Deletes every key under the prefix (SCAN + UNLINK, never KEYS). */
export async function deleteAll(redis: Redis, prefix: string): Promise<number> {
  let cursor = '0';
  let n = 0;
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix.replace(/[*?[\]\\]/g, '\\$&')}*`, 'COUNT', 1000);
    if (keys.length) n += await redis.unlink(...keys);
    cursor = next;
  } while (cursor !== '0');
  return n;
}
