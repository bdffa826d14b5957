/**
 * CPU profile of the broker during the token-exchange load (or another request against a fresh task,
 * see `scenario`): a separate broker process with the profiler agent preloaded, profiling only the
 * measured window (not start-up or warm-up). Its numbers are not used for targets (sampling costs
 * throughput); the summary says where the time goes.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Cleanup } from './cleanup.js';
import { NOISY_PCT, runScenario, type LoadOptions, type LoadResult } from './load.js';
import { CpuMonitor, waitForQuiet } from './cpu-monitor.js';
import { MayflyClient, type HttpRequestSpec } from './mayfly-client.js';
import { sleep } from './net.js';
import { summariseProfile, type ProfileSummary } from './profile-summary.js';
import { startMayfly, type BrokerOptions } from './servers.js';

export interface ProfileRun {
  file: string;
  load: LoadResult;
  summary: ProfileSummary;
}

export interface ProfiledScenario {
  /** Scenario name; the profile file is `mayfly-<slug>.cpuprofile`. */
  name: string;
  slug: string;
  request: (client: MayflyClient, taskId: string) => HttpRequestSpec;
}

const EXCHANGE: ProfiledScenario = { name: 'mayfly token exchange (profiled)', slug: 'exchange', request: (client, taskId) => client.exchangeRequest(taskId) };

export async function profileExchange(
  /** The broker as startMayfly takes it (one process: the profiler writes one file), plus the load. */
  o: Omit<BrokerOptions, 'cpuProfilePath' | 'workers'> & {
    orchJwt: string;
    agentJwt: string;
    load: LoadOptions;
    /** Default: token exchange. */
    scenario?: ProfiledScenario;
  },
  cleanup: Cleanup,
): Promise<ProfileRun> {
  const scenario = o.scenario ?? EXCHANGE;
  const dir = join(o.dir, `profiled-broker-${scenario.slug}`);
  mkdirSync(dir, { recursive: true });
  const file = join(o.dir, `mayfly-${scenario.slug}.cpuprofile`);
  const broker = await startMayfly({
    root: o.root,
    entry: o.entry,
    dir,
    redisUrl: o.redisUrl,
    prefix: o.prefix,
    jwksPath: o.jwksPath,
    cpuProfilePath: file,
    ...(o.certificates ? { certificates: true } : {}),
  });
  cleanup.defer('profiled broker', () => broker.child.stop());
  try {
    const client = new MayflyClient(broker.baseUrl, o.orchJwt, o.agentJwt);
    const taskId = await client.openTask();
    const req = scenario.request(client, taskId);
    await runScenario('warm-up', broker.baseUrl, req, { ...o.load, durationS: o.load.warmupS, warmupS: 0 });
    const pids = { loadgen: process.pid, server: broker.child.pid };
    await waitForQuiet(pids, NOISY_PCT);
    broker.child.signal('SIGUSR2');
    await sleep(100);
    const load = await runScenario(scenario.name, broker.baseUrl, req, { ...o.load, warmupS: 0 }, new CpuMonitor(pids));
    broker.child.signal('SIGUSR2');
    const deadline = Date.now() + 15_000;
    while (!existsSync(file)) {
      if (Date.now() > deadline) throw new Error(`no CPU profile written\n${broker.child.output()}`);
      await sleep(100);
    }
    return { file, load, summary: summariseProfile(file) };
  } finally {
    await broker.child.stop();
  }
}
