/**
 * The load generator's own garbage, collected before a timed single request (a CRL fetch), so a GC
 * pause of the bench process, which holds the CSR pool and autocannon's results, is not timed as the
 * server's latency. (No --expose-gc flag needed: V8 exposes `gc` to a fresh context once the flag is set.)
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { sleep } from './net.js';

setFlagsFromString('--expose_gc');
const gc = runInNewContext('gc') as () => void;

/**
 * Collects, then waits SWEEP_SETTLE_MS: V8 sweeps the collected pages on background threads after
 * `gc()` returns, and on two cores those threads took CPU from the timed request, the broker and Redis.
 * Short CRL runs (`--no-cfssl --rounds 1 --duration 2`): the replica's first fetch after the close
 * 6.1-20.6 ms in seven before, 5.8-11.7 in five after; `GET /healthz` 0.69-1.05 ms after, where the
 * full runs just before gave 1.30-2.20.
 */
export async function collectGarbage(): Promise<void> {
  gc();
  await sleep(SWEEP_SETTLE_MS);
}

const SWEEP_SETTLE_MS = 150;
