/**
 * Revocation is evaluated at verification time: whatever a close races with, once the close has
 * answered, no credential of the task is active and none can be minted.
 */
import { describe, expect, it } from 'vitest';
import { WIDE_TASK, STORES, useBroker } from '../helpers/broker.js';

describe.each(STORES)('exchange racing a close (%s)', (store) => {
  const ctx = useBroker(store);

  it('every token minted around the close is inactive afterwards', async () => {
    const orch = await ctx.b.attest('orch');
    const agent = await ctx.b.attest('agent-b');
    for (let round = 0; round < 5; round++) {
      const task = (await ctx.a.openTask(WIDE_TASK, orch)).body.task_id;
      const exchanges = Array.from({ length: 40 }, () => ctx.a.exchange(agent, task));
      const close = ctx.a.close(task, orch);
      const results = await Promise.all(exchanges);
      expect((await close).status).toBe(200);
      const minted = results.filter((r) => r.status === 200).map((r) => r.body.access_token as string);
      for (const r of results) expect([200, 400]).toContain(r.status);
      const verdicts = await Promise.all(minted.map((t) => ctx.a.introspect(t)));
      for (const v of verdicts) expect(v.body).toEqual({ active: false });
      const shown = (await ctx.a.getTask(task, orch)).body;
      expect(shown.credentials.issued).toBe(minted.length); // refused exchanges recorded nothing
      expect((await ctx.a.exchange(agent, task)).status).toBe(400);
    }
  });
});
