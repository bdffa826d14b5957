/** Redis access for tests: the server comes from test/setup/redis.global.ts (always a real Redis). */
import { randomBytes } from 'node:crypto';
import { inject } from 'vitest';
import { freePort } from './port.js';

export function redisUrl(): string {
  return inject('redisUrl');
}

/** A fresh key prefix per call, so test files and tests isolate their keys on a shared server. */
export function uniquePrefix(): string {
  return `t:${randomBytes(6).toString('hex')}:`;
}

/** A local port with nothing listening on it (for "Redis is down" tests). */
export const deadPort = freePort;
