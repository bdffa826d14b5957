/**
 * Throwaway local redis-servers (Debian's package; no persistence) for the tests: one server, or a
 * Redis Cluster of masters with optional replicas. Used by the global setup (test/setup/redis.global.ts)
 * and by tests that need a server of their own to kill (e2e/cluster-failover.test.ts).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants, mkdtempSync, rmSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { Redis } from 'ioredis';
import { freePort } from './port.js';

export type Teardown = () => Promise<void>;

/** Whether an executable of this name is on PATH. */
export function onPath(cmd: string): boolean {
  return (process.env.PATH ?? '').split(delimiter).some((dir) => {
    try {
      accessSync(join(dir, cmd), constants.X_OK);
      return dir !== '';
    } catch {
      return false;
    }
  });
}

export interface RedisServer {
  url: string;
  port: number;
  /** SIGKILL: the server dies as a crashed host would, without a goodbye. */
  kill: () => void;
  teardown: Teardown;
}

/** One raw-socket PING; true when the server answers +PONG. */
function pingOnce(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = createConnection({ host: '127.0.0.1', port });
    const finish = (ok: boolean): void => {
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(500, () => finish(false));
    sock.once('error', () => finish(false));
    sock.once('connect', () => sock.write('PING\r\n'));
    sock.once('data', (buf) => finish(buf.toString().startsWith('+PONG')));
  });
}

export async function startRedisServer(extra: string[] = []): Promise<RedisServer> {
  const port = await freePort();
  const args = ['--save', '', '--appendonly', 'no', '--port', String(port), '--bind', '127.0.0.1', ...extra];
  const child: ChildProcess = spawn('redis-server', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  let exited = false;
  child.once('exit', () => (exited = true));

  const deadline = Date.now() + 10_000;
  while (!(await pingOnce(port))) {
    if (exited || Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`redis-server on port ${port} did not answer PING: ${stderr.trim()}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  const teardown = async (): Promise<void> => {
    if (exited) return;
    const gone = new Promise<void>((r) => child.once('exit', () => r()));
    child.kill('SIGTERM');
    await Promise.race([gone, new Promise((r) => setTimeout(r, 3000))]);
    if (!exited) child.kill('SIGKILL');
  };
  return { url: `redis://127.0.0.1:${port}`, port, kill: () => void child.kill('SIGKILL'), teardown };
}

export interface LocalCluster {
  /** Every node's URL, masters first (seed URLs for a client). */
  urls: string[];
  masters: RedisServer[];
  /** `replicas[i]` replicates `masters[i]` (empty without replicas). */
  replicas: RedisServer[];
  teardown: Teardown;
}

/**
 * `masters` nodes, each started in cluster mode (its nodes.conf in a temp dir) and given an equal
 * share of the 16,384 slots, and with `replicas: true` one replica per master; all introduced to the
 * first. Ready when every node says cluster_state:ok and knows every other, and every replica's link
 * to its master is up. `nodeTimeoutMs` is also how soon a dead master's replica takes over.
 */
export async function startRedisCluster(o: { masters: number; replicas?: boolean; nodeTimeoutMs?: number }): Promise<LocalCluster> {
  const n = o.masters;
  const total = o.replicas ? 2 * n : n;
  const dir = mkdtempSync(join(tmpdir(), 'mayfly-redis-cluster-'));
  const nodes = await Promise.all(
    Array.from({ length: total }, (_, i) =>
      startRedisServer(['--cluster-enabled', 'yes', '--cluster-config-file', join(dir, `nodes-${i}.conf`), '--dir', dir, '--cluster-node-timeout', String(o.nodeTimeoutMs ?? 2000)]),
    ),
  );
  const teardown = async (): Promise<void> => {
    await Promise.all(nodes.map((x) => x.teardown()));
    rmSync(dir, { recursive: true, force: true });
  };
  const clients = nodes.map((x) => new Redis(x.url, { lazyConnect: false, maxRetriesPerRequest: 1 }));
  try {
    const per = Math.ceil(16384 / n);
    await Promise.all(clients.slice(0, n).map((c, i) => c.call('CLUSTER', 'ADDSLOTSRANGE', String(i * per), String(Math.min(16383, (i + 1) * per - 1)))));
    const first = new URL(nodes[0]!.url);
    await Promise.all(clients.slice(1).map((c) => c.call('CLUSTER', 'MEET', first.hostname, first.port)));
    const formed = (infos: string[]) => infos.every((x) => new RegExp(`cluster_known_nodes:${total}\\b`).test(x));
    await until(async () => formed(await Promise.all(clients.map((c) => c.call('CLUSTER', 'INFO') as Promise<string>))), 'redis cluster nodes did not meet');
    if (o.replicas) {
      const ids = (await Promise.all(clients.slice(0, n).map((c) => c.call('CLUSTER', 'MYID')))) as string[];
      // a replica can only follow a master its own node table knows: retried until it does
      await until(
        async () => (await Promise.all(clients.slice(n).map((c, i) => c.call('CLUSTER', 'REPLICATE', ids[i]!).then(() => true, () => false)))).every(Boolean),
        'redis cluster replicas could not follow their masters',
      );
      await until(
        async () => (await Promise.all(clients.slice(n).map((c) => c.call('INFO', 'replication') as Promise<string>))).every((x) => /master_link_status:up/.test(x)),
        'redis cluster replicas did not sync',
      );
    }
    await until(
      async () => (await Promise.all(clients.map((c) => c.call('CLUSTER', 'INFO') as Promise<string>))).every((x) => /cluster_state:ok/.test(x)),
      'redis cluster did not become ok',
    );
  } catch (e) {
    await teardown();
    throw e;
  } finally {
    clients.forEach((c) => c.disconnect());
  }
  return { urls: nodes.map((x) => x.url), masters: nodes.slice(0, n), replicas: nodes.slice(n), teardown };
}

async function until(check: () => Promise<boolean>, failure: string, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(failure);
    await new Promise((r) => setTimeout(r, 100));
  }
}
