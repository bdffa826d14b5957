/**
 * Redis Cluster failover: the master holding a task's keys dies (SIGKILL, as a crashed host) and its
 * replica takes over. Throughout, the broker fails closed (every answer is a success or a 503, never
 * a 500, never a token reported inactive that is active, nor one issued without being recorded),
 * and it resumes by itself on the promoted replica with the task's state intact: the token issued
 * before the failure is still active, and closing the task still revokes it.
 * Uses a cluster of its own (3 masters, one replica each), since it kills one of its nodes.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, http, startTestBroker, WIDE_TASK, type Res, type TestBroker } from '../helpers/broker.js';
import { onPath, startRedisCluster, type LocalCluster } from '../helpers/redis-servers.js';
import { uniquePrefix } from '../helpers/redis.js';

const haveRedis = onPath('redis-server');

/** The master node serving `key`'s slot, by CLUSTER SLOTS. */
async function masterOf(cluster: LocalCluster, key: string): Promise<number> {
  const c = new Redis(cluster.masters[0]!.url, { maxRetriesPerRequest: 1 });
  try {
    const slot = Number(await c.call('CLUSTER', 'KEYSLOT', key));
    const ranges = (await c.call('CLUSTER', 'SLOTS')) as Array<[number, number, [string, number, string]]>;
    const owner = ranges.find(([from, to]) => slot >= from && slot <= to);
    if (!owner) throw new Error(`no node serves slot ${slot}`);
    return cluster.masters.findIndex((m) => m.port === Number(owner[2][1]));
  } finally {
    c.disconnect();
  }
}

describe.skipIf(!haveRedis)('Redis Cluster: a master dies and its replica takes over', () => {
  let cluster: LocalCluster;
  let b: TestBroker;
  let a: ReturnType<typeof api>;
  const prefix = uniquePrefix();
  beforeAll(async () => {
    cluster = await startRedisCluster({ masters: 3, replicas: true, nodeTimeoutMs: 1000 });
    b = await startTestBroker({ store: 'cluster', clusterUrls: cluster.urls, prefix });
    a = api(b);
  }, 60_000);
  afterAll(async () => {
    await b?.close();
    await cluster?.teardown();
  });

  it('fails closed while the master is gone, then resumes on the replica with the task intact', async () => {
    const orch = await b.attest('orch');
    const agent = await b.attest('agent-b');
    const task = (await a.openTask(WIDE_TASK, orch)).body.task_id as string;
    const token = (await a.exchange(agent, task)).body.access_token as string;
    expect((await a.introspect(token)).body.active).toBe(true);

    // the task's master, once its replica holds every write so far (WAIT: acknowledged by 1 replica)
    const m = await masterOf(cluster, `${prefix}task:{${task}}`);
    expect(m).toBeGreaterThanOrEqual(0);
    const master = new Redis(cluster.masters[m]!.url, { maxRetriesPerRequest: 1 });
    expect(Number(await master.call('WAIT', '1', '5000'))).toBe(1);
    master.disconnect();
    cluster.masters[m]!.kill();

    const seen: Array<{ what: string; status: number }> = [];
    const check = (what: string, r: Res, ok: (r: Res) => boolean): boolean => {
      seen.push({ what, status: r.status });
      // fail closed: a 503 with the standard body, or a correct success; never a 500
      if (r.status === 503) {
        expect(r.body.error).toBe('temporarily_unavailable');
        return false;
      }
      expect(ok(r)).toBe(true);
      return true;
    };
    const issued = [token];
    const killedAt = Date.now();
    let recoveredAt = 0;
    while (Date.now() - killedAt < 45_000) {
      const intro = check('introspect', await a.introspect(token), (r) => r.status === 200 && r.body.active === true);
      const exchanged = await a.exchange(agent, task);
      const ex = check('exchange', exchanged, (r) => r.status === 200 && typeof r.body.access_token === 'string');
      if (ex) issued.push(exchanged.body.access_token as string);
      if (intro && ex) {
        recoveredAt = Date.now();
        break;
      }
      await new Promise((r) => setTimeout(r, 150));
    }
    expect(recoveredAt, `no recovery within 45 s; answers: ${JSON.stringify(seen.slice(-6))}`).toBeGreaterThan(0);
    // the first calls went out at once after the kill, long before a replica can be promoted (the
    // node timeout alone is 1 s): they met the outage
    expect(seen.some((s) => s.status === 503)).toBe(true);
    expect((await http(`${b.url}/readyz`)).status).toBe(200);

    // the state survived the failover: the close still finds the task open, and every token handed out
    // (before, during and after it) was recorded in it and is revoked with it
    const closed = await a.close(task, orch);
    expect(closed.status).toBe(200);
    expect(closed.body.revoked).toBe(issued.length);
    for (const t of issued) expect((await a.introspect(t)).body.active).toBe(false);
    const after = await a.exchange(agent, task);
    expect(after.status).toBe(400);
    expect(after.body.access_token).toBeUndefined();
  }, 90_000);
});
