/**
 * Revocation is evaluated at verification time: whatever a close races with, once the close has
 * answered, no credential of the task is active and none can be minted.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, startTestBroker, WIDE_TASK, type TestBroker, STORES } from '../helpers/broker.js';

describe.each(STORES)('exchange racing a close (%s)', (store) => {
  let b: TestBroker;
  let a: ReturnType<typeof api>;
  beforeAll(async () => {
    b = await startTestBroker({ store });
    a = api(b);
  });
  afterAll(() => b.close());

  it('every token minted around the close is inactive afterwards', async () => {
    const orch = await b.attest('orch');
    const agent = await b.attest('agent-b');
    for (let round = 0; round < 5; round++) {
      const task = (await a.openTask(WIDE_TASK, orch)).body.task_id;
      const exchanges = Array.from({ length: 40 }, () => a.exchange(agent, task));
      const close = a.close(task, orch);
      const results = await Promise.all(exchanges);
      expect((await close).status).toBe(200);
      const minted = results.filter((r) => r.status === 200).map((r) => r.body.access_token as string);
      for (const r of results) expect([200, 400]).toContain(r.status);
      const verdicts = await Promise.all(minted.map((t) => a.introspect(t)));
      for (const v of verdicts) expect(v.body).toEqual({ active: false });
      const shown = (await a.getTask(task, orch)).body;
      expect(shown.credentials.issued).toBe(minted.length); // refused exchanges recorded nothing
      expect((await a.exchange(agent, task)).status).toBe(400);
    }
  });
});
