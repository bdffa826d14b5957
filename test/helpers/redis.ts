/** Redis access for tests: the server comes from test/setup/redis.global.ts (always a real Redis). */
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import { inject } from 'vitest';

export function redisUrl(): string {
  return inject('redisUrl');
}

/** A fresh key prefix per call, so test files and tests isolate their keys on a shared server. */
export function uniquePrefix(): string {
  return `t:${randomBytes(6).toString('hex')}:`;
}

/** A local port with nothing listening on it (for "Redis is down" tests). */
export function deadPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}
