/**
 * The Redis the broker runs on: REDIS_URL when set (left running), else a throwaway redis-server on a
 * free loopback port without persistence, stopped by the cleanup.
 */
import { spawn } from 'node:child_process';
import { Redis } from 'ioredis';
import type { Cleanup } from './cleanup.js';
import { freePort, LOOPBACK, sleep } from './net.js';

export interface RedisHandle {
  url: string;
  /** True when the bench started this server (and may reconfigure it, e.g. the slowlog). */
  owned: boolean;
  version: string;
  /** The redis-server process when the bench started it. */
  pid?: number;
}

export async function acquireRedis(cleanup: Cleanup): Promise<RedisHandle> {
  const fromEnv = process.env.REDIS_URL;
  if (fromEnv) return { url: fromEnv, owned: false, version: await serverVersion(fromEnv) };

  const port = await freePort();
  const proc = spawn('redis-server', ['--save', '', '--appendonly', 'no', '--port', String(port), '--bind', LOOPBACK], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  proc.stderr?.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4096)));
  let exited = false;
  const exit = new Promise<void>((r) => proc.once('exit', () => ((exited = true), r())));
  proc.once('error', (e) => (stderr += e.message));
  cleanup.defer('redis-server', async () => {
    if (exited) return;
    proc.kill('SIGTERM');
    await Promise.race([exit, sleep(3000)]);
    if (!exited) proc.kill('SIGKILL');
  });

  const url = `redis://${LOOPBACK}:${port}`;
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      return { url, owned: true, version: await serverVersion(url), ...(proc.pid ? { pid: proc.pid } : {}) };
    } catch (e) {
      if (exited || Date.now() > deadline) throw new Error(`redis-server on port ${port} did not answer: ${(e as Error).message} ${stderr}`);
      await sleep(100);
    }
  }
}

async function serverVersion(url: string): Promise<string> {
  const r = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 1000 });
  r.on('error', () => undefined);
  try {
    await r.connect();
    const info = await r.info('server');
    return /redis_version:(\S+)/.exec(info)?.[1] ?? 'unknown';
  } finally {
    r.disconnect();
  }
}
