/**
 * The load generator's own garbage, collected before a timed single request (a CRL fetch), so a GC
 * pause of the bench process, which holds the CSR pool and autocannon's results, is not timed as the
 * server's latency. (No --expose-gc flag needed: V8 exposes `gc` to a fresh context once the flag is set.)
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

setFlagsFromString('--expose_gc');
const gc = runInNewContext('gc') as () => void;

export function collectGarbage(): void {
  gc();
}
