/**
 * vitest globalSetup: provides `redisUrl` to every test file. Tests always talk to a real Redis.
 * Order: REDIS_URL; else a throwaway `redis-server` on a free port (no persistence); else a
 * `redis:7-alpine` container via testcontainers when a Docker engine answers; else fail loudly.
 * Also `redisClusterUrls`: REDIS_CLUSTER_URLS, else a throwaway 3-master Redis Cluster of local
 * redis-servers, else none (the cluster tests then say they were skipped).
 */
import type { TestProject } from 'vitest/node';
import { onPath, startRedisCluster, startRedisServer, type Teardown } from '../helpers/redis-servers.js';

declare module 'vitest' {
  export interface ProvidedContext {
    redisUrl: string;
    /** Seed URLs of a Redis Cluster (REDIS_CLUSTER_URLS, comma-separated, or 3 local redis-servers); empty: none. */
    redisClusterUrls: string[];
  }
}

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

/** REDIS_CLUSTER_URLS, else a local 3-master cluster when redis-server is installed, else none. */
async function clusterFor(): Promise<{ urls: string[]; teardown: Teardown }> {
  const fromEnv = process.env.REDIS_CLUSTER_URLS;
  if (fromEnv) return { urls: fromEnv.split(',').map((u) => u.trim()).filter(Boolean), teardown: async () => {} };
  if (!onPath('redis-server')) return { urls: [], teardown: async () => {} };
  return startRedisCluster({ masters: 3 });
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
