/**
 * CPU profile of CRL rebuilds (`--profile`): a separate broker process with the profiler agent
 * preloaded, on its own Redis key prefix (so its CRL holds only its own task). N certificates into one
 * task, close it, one untimed fetch (the first rebuild, warming the code), then the profiled window:
 * R rebuilds, each forced by bumping the store's CRL version in Redis (INCR, as every revocation does)
 * and fetching GET /v1/ca/crl, so the profile holds CRL building and nothing else.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import type { Cleanup } from '../lib/cleanup.js';
import { waitForQuiet } from '../lib/cpu-monitor.js';
import { TimedClient } from '../lib/http-timing.js';
import { fire, NOISY_PCT } from '../lib/load.js';
import { MayflyClient } from '../lib/mayfly-client.js';
import { sleep } from '../lib/net.js';
import { summariseProfile, type ProfileSummary } from '../lib/profile-summary.js';
import { startMayfly } from '../lib/servers.js';
import { median } from '../lib/stats.js';
import type { BenchCsr } from './csr.js';
import { certificateRequest } from './mayfly-certs.js';

export interface CrlProfile {
  file: string;
  certs: number;
  rebuilds: number;
  rebuildMs: number[];
  medianMs: number;
  summary: ProfileSummary;
}

export async function profileCrl(
  o: { root: string; entry: string; dir: string; redisUrl: string; prefix: string; jwksPath: string; orchJwt: string; agentJwt: string; csrs: readonly BenchCsr[]; certs: number; rebuilds: number; connections: number },
  admin: Redis,
  cleanup: Cleanup,
): Promise<CrlProfile> {
  const dir = join(o.dir, 'profiled-broker-crl');
  mkdirSync(dir, { recursive: true });
  const file = join(o.dir, 'mayfly-crl.cpuprofile');
  const broker = await startMayfly({ root: o.root, entry: o.entry, dir, redisUrl: o.redisUrl, prefix: o.prefix, jwksPath: o.jwksPath, cpuProfilePath: file, certificates: true });
  cleanup.defer('profiled broker (crl)', () => broker.child.stop());
  const http = new TimedClient(broker.baseUrl);
  try {
    const client = new MayflyClient(broker.baseUrl, o.orchJwt, o.agentJwt);
    const taskId = await client.openTask();
    await fire(broker.baseUrl, certificateRequest(o.agentJwt, taskId, o.csrs), o.certs, o.connections);
    await client.close(taskId);
    const get = async () => {
      const r = await http.sendBytes({ method: 'GET', path: '/v1/ca/crl' });
      if (r.status !== 200) throw new Error(`GET /v1/ca/crl: HTTP ${r.status}`);
      return r;
    };
    await get();
    await sleep(300);
    await waitForQuiet({ loadgen: process.pid, server: broker.child.pid }, NOISY_PCT, 15_000);
    broker.child.signal('SIGUSR2');
    await sleep(100);
    const rebuildMs: number[] = [];
    for (let i = 0; i < o.rebuilds; i++) {
      await admin.incr(`${o.prefix}crl:version`);
      rebuildMs.push((await get()).ms);
    }
    broker.child.signal('SIGUSR2');
    const deadline = Date.now() + 15_000;
    while (!existsSync(file)) {
      if (Date.now() > deadline) throw new Error(`no CPU profile written\n${broker.child.output()}`);
      await sleep(100);
    }
    return { file, certs: o.certs, rebuilds: o.rebuilds, rebuildMs, medianMs: median(rebuildMs), summary: summariseProfile(file) };
  } finally {
    http.close();
    await broker.child.stop();
  }
}
