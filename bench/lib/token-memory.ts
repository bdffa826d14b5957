/**
 * Redis memory per active token: mint N tokens into one fresh task, then (a) MEMORY USAGE of the task's
 * three keys / N, the per-task state proper; (b) INFO used_memory delta / N, which also counts the
 * audit stream entry each grant appends (and allocator noise); (c) the audit stream's own delta / N.
 */
import type { Redis } from 'ioredis';
import { fire } from './load.js';
import type { MayflyClient } from './mayfly-client.js';
import { sleep } from './net.js';
import type { StoreKeys } from './store-keys.js';

export interface MemoryReport {
  tokens: number;
  taskKeysBytes: { task: number; creds: number; agents: number; expiries: number };
  taskKeysPerToken: number;
  usedMemoryDelta: number;
  usedMemoryPerToken: number;
  auditStreamDelta: number;
  auditStreamPerToken: number;
  auditEntriesAdded: number;
  zsetEncoding: string;
}

const usedMemory = async (r: Redis) => Number(/used_memory:(\d+)/.exec(await r.info('memory'))?.[1] ?? NaN);
const usage = async (r: Redis, key: string) => Number((await r.memory('USAGE', key, 'SAMPLES', 0)) ?? 0);

export async function measureTokenMemory(client: MayflyClient, redis: Redis, keys: StoreKeys, tokens: number, connections: number): Promise<MemoryReport> {
  const auditKey = keys.audit;
  const taskId = await client.openTask();
  await sleep(200);
  const xlen0 = await redis.xlen(auditKey);
  const audit0 = await usage(redis, auditKey);
  const used0 = await usedMemory(redis);

  await fire(client.baseUrl, client.exchangeRequest(taskId), tokens, connections);
  // audit appends are fire-and-forget in the broker: wait until all N have landed
  const deadline = Date.now() + 5000;
  while ((await redis.xlen(auditKey)) - xlen0 < tokens && Date.now() < deadline) await sleep(50);
  await sleep(200);

  const used1 = await usedMemory(redis);
  const audit1 = await usage(redis, auditKey);
  const xlen1 = await redis.xlen(auditKey);
  const bytes = {
    task: await usage(redis, keys.task(taskId)),
    creds: await usage(redis, keys.creds(taskId)),
    agents: await usage(redis, keys.agents(taskId)),
    expiries: await usage(redis, keys.expiries(taskId)),
  };
  const keyBytes = bytes.task + bytes.creds + bytes.agents + bytes.expiries;
  return {
    tokens,
    taskKeysBytes: bytes,
    taskKeysPerToken: keyBytes / tokens,
    usedMemoryDelta: used1 - used0,
    usedMemoryPerToken: (used1 - used0) / tokens,
    auditStreamDelta: audit1 - audit0,
    auditStreamPerToken: (audit1 - audit0) / tokens,
    auditEntriesAdded: xlen1 - xlen0,
    zsetEncoding: String(await redis.object('ENCODING', keys.creds(taskId))),
  };
}
