/**
 * Several broker processes on one address (config `workers`), with node:cluster: the primary prepares
 * what the workers share on disk (signing keys, the generated CA), forks the workers, and supervises
 * them; each worker is a whole broker (server.ts) and a replica of the others through Redis, exactly as
 * separate hosts would be. The primary listens and hands each connection to the worker holding the
 * fewest (balancer.ts); requests on a connection stay with its worker.
 *
 * The primary:
 * - fails at once when it cannot listen (a port in use), before any worker starts;
 * - exits with a worker's code when a first worker dies before all have started serving (bad config):
 *   restarting would only repeat the failure;
 * - replaces a worker that dies later, after a delay that doubles while replacements keep dying young
 *   (1 s to 30 s), like a process supervisor;
 * - forwards SIGTERM/SIGINT (each worker drains and closes its store) and SIGHUP (reload signing keys),
 *   and sends SIGHUP to the others when a replacement worker listens (it read the key directory anew).
 */
import cluster, { type Worker } from 'node:cluster';
import { createServer, type AddressInfo } from 'node:net';
import type { Config } from './config/config.js';
import type { Logger } from './audit/logger.js';
import { Keyring } from './keys/keyring.js';
import { loadAuthority } from './ca/authority.js';
import { Balancer, workerEnv } from './balancer.js';

/** The message a worker sends its primary once its server listens. */
export interface ListeningMessage {
  mayfly: 'listening';
  url: string;
}

export const isListeningMessage = (m: unknown): m is ListeningMessage =>
  typeof m === 'object' && m !== null && (m as ListeningMessage).mayfly === 'listening' && typeof (m as ListeningMessage).url === 'string';

/** Tells the primary (when there is one) that this worker serves `url`. */
export function announceListening(url: string): void {
  if (cluster.isWorker && process.send) process.send({ mayfly: 'listening', url } satisfies ListeningMessage);
}

const YOUNG_MS = 10_000;
const MIN_DELAY_MS = 1_000;
const MAX_DELAY_MS = 30_000;
const STOP_GRACE_MS = 8_000;

/**
 * Runs the primary until it is told to stop; resolves with the process exit code. `count` ≥ 2.
 * Workers re-run this same program (cluster.fork), see `cluster.isWorker`, and start a broker.
 */
export async function supervise(config: Config, log: Logger): Promise<number> {
  // shared state first, so workers starting together find it instead of racing to create it
  await Keyring.open(config.keysDir, config.tokens.alg);
  loadAuthority(config);
  // the primary listens (a port in use fails here, before any worker starts), the workers serve what it hands them
  const balancer = new Balancer();
  const listener = createServer({ pauseOnConnect: true }, (socket) => balancer.hand(socket));
  await new Promise<void>((resolve, reject) => {
    listener.once('error', reject);
    listener.listen(config.listen.port, config.listen.host, () => {
      listener.off('error', reject);
      resolve();
    });
  });
  // a failed accept (EMFILE) is that connection's, not the listener's
  listener.on('error', (err) => log.error({ err: err.message }, 'accepting a connection failed'));
  const env = workerEnv(listener.address() as AddressInfo);

  const count = config.workers;
  const started = new Map<number, number>(); // worker id -> fork time
  const listening = new Set<number>();
  let stopping = false;
  let delay = MIN_DELAY_MS;
  let announced = false;
  let finish!: (code: number) => void;
  const done = new Promise<number>((r) => (finish = r));

  // only to workers that listen: one still starting has no handler yet (SIGHUP would end it), and
  // reads the key directory as it starts anyway
  const reloadKeys = (which: (w: Worker) => boolean) => {
    for (const w of Object.values(cluster.workers ?? {})) if (w && listening.has(w.id) && !w.isDead() && which(w)) w.process.kill('SIGHUP');
  };

  const fork = (): Worker => {
    const w = cluster.fork(env);
    started.set(w.id, Date.now());
    w.on('message', (m: unknown) => {
      if (!isListeningMessage(m)) return;
      listening.add(w.id);
      balancer.add(w);
      if (!announced && listening.size === count) {
        announced = true;
        log.info({ url: m.url, workers: count, pid: process.pid }, 'mayfly workers listening');
      } else if (announced) {
        // a replacement read the key directory as it is now (a key rotated since, without SIGHUP):
        // the others re-read it too, so every worker publishes and signs with the same keys
        reloadKeys((other) => other.id !== w.id);
      }
    });
    return w;
  };

  const stopAll = (code: number) => {
    if (stopping) return;
    stopping = true;
    listener.close();
    balancer.stop();
    const alive = Object.values(cluster.workers ?? {}).filter((w): w is Worker => w !== undefined && !w.isDead());
    if (alive.length === 0) return finish(code);
    for (const w of alive) w.process.kill('SIGTERM');
    const timer = setTimeout(() => {
      for (const w of alive) if (!w.isDead()) w.process.kill('SIGKILL');
    }, STOP_GRACE_MS);
    timer.unref();
    let left = alive.length;
    for (const w of alive)
      w.once('exit', () => {
        if (--left === 0) {
          clearTimeout(timer);
          finish(code);
        }
      });
  };

  cluster.on('exit', (w, code, signal) => {
    const age = Date.now() - (started.get(w.id) ?? 0);
    const wasListening = listening.delete(w.id);
    balancer.remove(w);
    started.delete(w.id);
    if (stopping) return;
    if (!announced && !wasListening) {
      log.error({ worker: w.process.pid, code, signal }, 'a worker failed to start; stopping');
      stopAll(typeof code === 'number' && code > 0 ? code : 1);
      return;
    }
    const wait = age < YOUNG_MS ? delay : MIN_DELAY_MS;
    delay = Math.min(wait * 2, MAX_DELAY_MS);
    log.error({ worker: w.process.pid, code, signal, restart_in_ms: wait }, 'a worker exited; replacing it');
    setTimeout(() => {
      if (!stopping) fork();
    }, wait);
  });

  for (const sig of ['SIGINT', 'SIGTERM'] as const)
    process.on(sig, () => {
      log.info({ sig }, 'shutting down workers');
      stopAll(0);
    });
  process.on('SIGHUP', () => reloadKeys(() => true));

  for (let i = 0; i < count; i++) fork();
  return done;
}
