/**
 * vitest globalSetup: provides `redisUrl` to every test file. Tests always talk to a real Redis.
 * Order: REDIS_URL; else a throwaway `redis-server` on a free port (no persistence); else a
 * `redis:7-alpine` container via testcontainers when a Docker engine answers; else fail loudly.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { createConnection } from 'node:net';
import { delimiter, join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { freePort } from '../helpers/port.js';

declare module 'vitest' {
  export interface ProvidedContext {
    redisUrl: string;
  }
}

type Teardown = () => Promise<void>;

export default async function setup(project: TestProject): Promise<Teardown> {
  const fromEnv = process.env.REDIS_URL;
  if (fromEnv) {
    project.provide('redisUrl', fromEnv);
    return async () => {};
  }
  if (onPath('redis-server')) {
    const { url, teardown } = await startRedisServer();
    project.provide('redisUrl', url);
    return teardown;
  }
  const container = await startContainer();
  if (typeof container === 'object') {
    project.provide('redisUrl', container.url);
    return container.teardown;
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

async function startRedisServer(): Promise<{ url: string; teardown: Teardown }> {
  const port = await freePort();
  const args = ['--save', '', '--appendonly', 'no', '--port', String(port), '--bind', '127.0.0.1'];
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
