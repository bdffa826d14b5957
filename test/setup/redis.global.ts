/**
 * vitest globalSetup: provides `redisUrl` to every test file. Tests always talk to a real Redis.
 * Order: REDIS_URL; else a throwaway `redis-server` on a free port (no persistence); else a
 * `redis:7-alpine` container via testcontainers when a Docker engine answers; else fail loudly.
 * Also `redisClusterUrls`: REDIS_CLUSTER_URLS, else a throwaway 3-master Redis Cluster of local
 * redis-servers, else none (the cluster tests then say they were skipped).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { Redis } from 'ioredis';
import { createConnection } from 'node:net';
import { delimiter, join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { freePort } from '../helpers/port.js';

declare module 'vitest' {
  export interface ProvidedContext {
    redisUrl: string;
    /** Seed URLs of a Redis Cluster (REDIS_CLUSTER_URLS, comma-separated, or 3 local redis-servers); empty: none. */
    redisClusterUrls: string[];
  }
}

type Teardown = () => Promise<void>;

export default async function setup(project: TestProject): Promise<Teardown> {
  const cluster = await clusterFor();
  project.provide('redisClusterUrls', cluster.urls);
  const fromEnv = process.env.REDIS_URL;
  if (fromEnv) {
    project.provide('redisUrl', fromEnv);
    return cluster.teardown;
  }
  if (onPath('redis-server')) {
    const { url, teardown } = await startRedisServer();
    project.provide('redisUrl', url);
    return async () => {
      await Promise.all([teardown(), cluster.teardown()]);
    };
  }
  const container = await startContainer();
  if (typeof container === 'object') {
    project.provide('redisUrl', container.url);
    return async () => {
      await Promise.all([container.teardown(), cluster.teardown()]);
    };
  }
  throw new Error(
    'No Redis for the tests: set REDIS_URL, install redis-server (node scripts/ensure-redis.mjs does it ' +
      `as root with apt-get), or start a Docker engine for testcontainers (${container}).`,
  );
}

function onPath(cmd: string): boolean {
  return (process.env.PATH ?? '').split(delimiter).some((dir) => {
    try {
      accessSync(join(dir, cmd), constants.X_OK);
      return dir !== '';
    } catch {
      return false;
    }
  });
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

/** REDIS_CLUSTER_URLS, else a local 3-master cluster when redis-server is installed, else none. */
async function clusterFor(): Promise<{ urls: string[]; teardown: Teardown }> {
  const fromEnv = process.env.REDIS_CLUSTER_URLS;
  if (fromEnv) return { urls: fromEnv.split(',').map((u) => u.trim()).filter(Boolean), teardown: async () => {} };
  if (!onPath('redis-server')) return { urls: [], teardown: async () => {} };
  return startRedisCluster(3);
}

/**
 * Three masters, no replicas: each node started in cluster mode (its nodes.conf in a temp dir), given
 * a third of the 16,384 slots, introduced to the first; ready when every node says cluster_state:ok.
 */
async function startRedisCluster(n: number): Promise<{ urls: string[]; teardown: Teardown }> {
  const dir = mkdtempSync(join(tmpdir(), 'mayfly-redis-cluster-'));
  const nodes = await Promise.all(
    Array.from({ length: n }, async (_, i) =>
      startRedisServer(['--cluster-enabled', 'yes', '--cluster-config-file', join(dir, `nodes-${i}.conf`), '--dir', dir, '--cluster-node-timeout', '2000']),
    ),
  );
  const teardown = async (): Promise<void> => {
    await Promise.all(nodes.map((x) => x.teardown()));
    rmSync(dir, { recursive: true, force: true });
  };
  const clients = nodes.map((x) => new Redis(x.url, { lazyConnect: false, maxRetriesPerRequest: 1 }));
  try {
    const per = Math.ceil(16384 / n);
    await Promise.all(clients.map((c, i) => c.call('CLUSTER', 'ADDSLOTSRANGE', String(i * per), String(Math.min(16383, (i + 1) * per - 1)))));
    const first = new URL(nodes[0]!.url);
    await Promise.all(clients.slice(1).map((c) => c.call('CLUSTER', 'MEET', first.hostname, first.port)));
    const deadline = Date.now() + 20_000;
    for (;;) {
      const infos = await Promise.all(clients.map((c) => c.call('CLUSTER', 'INFO') as Promise<string>));
      if (infos.every((x) => /cluster_state:ok/.test(x) && new RegExp(`cluster_known_nodes:${n}\\b`).test(x))) break;
      if (Date.now() > deadline) throw new Error(`redis cluster did not form: ${infos.join(' | ').replace(/\r\n/g, ' ')}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  } catch (e) {
    await teardown();
    throw e;
  } finally {
    clients.forEach((c) => c.disconnect());
  }
  return { urls: nodes.map((x) => x.url), teardown };
}

async function startRedisServer(extra: string[] = []): Promise<{ url: string; teardown: Teardown }> {
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
  return { url: `redis://127.0.0.1:${port}`, teardown };
}

/** A Redis container, or the reason there is none. */
async function startContainer(): Promise<{ url: string; teardown: Teardown } | string> {
  let tc: typeof import('testcontainers');
  try {
    tc = await import('testcontainers');
  } catch (err) {
    // e.g. testcontainers 12 pulls undici 8, which needs Node >= 22.19
    return `testcontainers failed to load on Node ${process.version}: ${(err as Error).message}`;
  }
  try {
    await tc.getContainerRuntimeClient();
  } catch (err) {
    return `no container runtime: ${(err as Error).message}`;
  }
  const c = await new tc.GenericContainer('redis:7-alpine').withExposedPorts(6379).start();
  return {
    url: `redis://${c.getHost()}:${c.getMappedPort(6379)}`,
    teardown: async () => {
      await c.stop();
    },
  };
}
