/** Loopback helpers: a free port, and waiting until an HTTP endpoint answers. */
import { createServer } from 'node:net';

export const LOOPBACK = '127.0.0.1';

/** A port nothing listens on right now (the OS picks it; a tiny reuse race is acceptable here). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, LOOPBACK, () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * Polls `url` (GET) until it answers 2xx (or any status `accept` takes); throws after `timeoutMs` or when
 * `alive()` turns false.
 */
export async function waitForHttp(url: string, timeoutMs: number, alive: () => boolean = () => true, accept: (status: number) => boolean = (s) => s >= 200 && s < 300): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer';
  while (Date.now() < deadline) {
    if (!alive()) throw new Error(`${url}: process exited before it answered`);
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(1000) });
      await res.arrayBuffer();
      if (accept(res.status)) return;
      last = `HTTP ${res.status}`;
    } catch (e) {
      last = (e as Error).message;
    }
    await sleep(100);
  }
  throw new Error(`${url}: not ready after ${timeoutMs} ms (${last})`);
}
