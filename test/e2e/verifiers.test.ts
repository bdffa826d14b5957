/**
 * Several resource-server verifiers, each in its own process, following the revocation stream of one
 * broker replica while another replica on the same Redis does the revoking: every verifier refuses a
 * closed task's token; a replica restarted mid-stream loses no event (verifiers resume by cursor).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, API, CLIENT, freePort, startTestBroker, WIDE_TASK, type TestBroker } from '../helpers/broker.js';
import { uniquePrefix } from '../helpers/redis.js';

const ISSUER = 'https://mayfly.replicas.test';

class VerifierProcess {
  private seq = 0;
  private waiting = new Map<string, (answer: string) => void>();
  ready: Promise<void>;
  constructor(readonly child: ChildProcess) {
    let markReady!: () => void;
    this.ready = new Promise((r) => (markReady = r));
    createInterface({ input: child.stdout! }).on('line', (line) => {
      if (line === 'ready') return markReady();
      const [id, answer] = line.split(' ');
      this.waiting.get(id!)?.(answer!);
      this.waiting.delete(id!);
    });
  }
  check(token: string): Promise<string> {
    const id = String(++this.seq);
    return new Promise((resolve) => {
      this.waiting.set(id, resolve);
      this.child.stdin!.write(`${id} ${token}\n`);
    });
  }
}

async function until(fn: () => Promise<boolean>, ms = 10_000): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await fn()) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return false;
}

describe('verifiers in other processes, replicas on one Redis', { timeout: 90_000 }, () => {
  const prefix = uniquePrefix();
  const keysDir = mkdtempSync(join(tmpdir(), 'mayfly-replica-keys-'));
  let writer: TestBroker; // where orchestrators act
  let feedReplica: TestBroker; // what the verifiers follow
  let feedPort: number;
  const verifiers: VerifierProcess[] = [];
  const replica = async (port?: number) =>
    startTestBroker({ prefix, keysDir, extra: { issuer: ISSUER, feed: { heartbeat: '500ms' } }, ...(port ? { port } : {}), ...(writer ? { signers: writer.signers } : {}) });

  beforeAll(async () => {
    writer = await replica();
    feedPort = await freePort();
    feedReplica = await replica(feedPort);
    for (let i = 0; i < 3; i++) {
      const child = spawn(process.execPath, ['--import', 'tsx', 'test/e2e/fixtures/verifier-process.ts', ISSUER, feedReplica.url, CLIENT.id, CLIENT.secret, API], {
        stdio: ['pipe', 'pipe', 'inherit'],
      });
      verifiers.push(new VerifierProcess(child));
    }
    await Promise.all(verifiers.map((v) => v.ready));
  });
  afterAll(async () => {
    for (const v of verifiers) v.child.kill('SIGTERM');
    await feedReplica.close().catch(() => undefined);
    await writer.close();
  });

  const tokenInNewTask = async () => {
    const a = api(writer);
    const orch = await writer.attest('orch');
    const task = (await a.openTask(WIDE_TASK, orch)).body.task_id as string;
    const token = (await a.exchange(await writer.attest('agent-b'), task)).body.access_token as string;
    return { a, orch, task, token };
  };

  it('every verifier refuses the token of a task closed on the other replica', async () => {
    const { a, orch, task, token } = await tokenInNewTask();
    expect(await Promise.all(verifiers.map((v) => v.check(token)))).toEqual(['ok', 'ok', 'ok']);
    expect((await a.close(task, orch)).status).toBe(200);
    const refusedByAll = await until(async () => (await Promise.all(verifiers.map((v) => v.check(token)))).every((x) => x === 'revoked:task_closed'));
    expect(refusedByAll).toBe(true);
  });

  it('a replica restarted mid-stream loses no event: verifiers resume from their cursor', async () => {
    const one = await tokenInNewTask();
    const two = await tokenInNewTask();
    expect(await Promise.all(verifiers.map((v) => v.check(two.token)))).toEqual(['ok', 'ok', 'ok']);
    await feedReplica.close(); // the replica the verifiers stream from goes away
    await one.a.close(one.task, one.orch); // revocations land while it is down
    await one.a.revoke(two.token);
    feedReplica = await replica(feedPort); // back on the same address
    const caughtUp = await until(async () => {
      const answers = await Promise.all(verifiers.flatMap((v) => [v.check(one.token), v.check(two.token)]));
      return answers.every((x) => x.startsWith('revoked:'));
    }, 20_000);
    expect(caughtUp).toBe(true);
  });
});
