/** Shared bits of the SDK tests: minting real tokens from a test broker, waiting for the feed. */
import type { ManualClock } from '../../src/clock.js';
import { api, WIDE_TASK, type TestBroker } from '../helpers/broker.js';

export async function eventually<T>(fn: () => Promise<T> | T, check: (v: T) => boolean, ms = 8000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (check(v) || Date.now() > end) return v;
    await new Promise((r) => setTimeout(r, 25));
  }
}

export const manual = (b: TestBroker) => b.clock as ManualClock;

/** Opens a task (as `orch`) and exchanges an attestation of `agent` for a token in it. */
export async function mint(
  b: TestBroker,
  o: { agent?: string; task?: Record<string, unknown>; taskId?: string; params?: Record<string, string | string[]> } = {},
): Promise<{ token: string; taskId: string; expiresIn: number }> {
  const a = api(b);
  const taskId = o.taskId ?? (await a.openTask({ ...WIDE_TASK, ...o.task })).body.task_id;
  const r = await a.exchange(await b.attest(o.agent ?? 'agent-b'), taskId, o.params);
  if (r.status !== 200) throw new Error(`exchange failed: ${r.status} ${r.text}`);
  return { token: r.body.access_token, taskId, expiresIn: r.body.expires_in };
}
