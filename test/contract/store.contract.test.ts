/**
 * One contract for the Store interface, run against RedisStore (a real server, from the global
 * setup) and MemoryStore. Times are explicit instants around the real clock (Redis key TTLs follow
 * the server's clock), never sleeps. Backend-specific checks (expiry, outages, memory) follow.
 */
import { spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { Redis } from 'ioredis';
import { afterEach, beforeEach, describe, expect, inject, it } from 'vitest';
import { ManualClock, randomId } from '../../src/clock.js';
import { StoreUnavailableError } from '../../src/errors.js';
import { MemoryStore } from '../../src/store/memory/memory-store.js';
import { RedisStore } from '../../src/store/redis/redis-store.js';
import type { Store, TaskRecord } from '../../src/store/store.js';
import { LOCK_HISTORY, serialSlot } from '../../src/store/store.js';
import { compareIds, parseId } from '../../src/store/stream-id.js';
import { deadPort, redisUrl, uniquePrefix } from '../helpers/redis.js';

const MIN = 60_000;
const AGENT_A = 'spiffe://example.org/agent/a';
const AGENT_B = 'spiffe://example.org/agent/b';

interface StoreOpts {
  auditMaxLen?: number;
}
type MakeStore = (clock: ManualClock, opts?: StoreOpts) => Store;

function taskAt(t0: number, over: Partial<TaskRecord> = {}): TaskRecord {
  return {
    id: randomId(),
    state: 'open',
    openedBy: 'operator:alice',
    createdAt: t0,
    expiresAt: t0 + 10 * MIN,
    agents: [AGENT_A, AGENT_B],
    scopes: ['repo:read', 'repo:write'],
    tools: ['git'],
    audiences: ['https://api.example.org'],
    purpose: 'fix the flaky test',
    onBehalfOf: 'user:bob',
    ...over,
  };
}

function describeStoreContract(name: string, makeStore: MakeStore): void {
  describe(`Store contract: ${name}`, () => {
    let t0: number;
    let clock: ManualClock;
    let store: Store;
    const opened: Store[] = [];
    const make = (opts?: StoreOpts): Store => {
      const s = makeStore(clock, opts);
      opened.push(s);
      return s;
    };
    /** A task created in the store, purged 20 minutes after t0. */
    const newTask = async (over: Partial<TaskRecord> = {}): Promise<TaskRecord> => {
      const t = taskAt(t0, over);
      await store.createTask(t, t0 + 20 * MIN);
      return t;
    };
    const issue = (taskId: string, exp: number, now: number, agent = AGENT_A, jti = randomId()) =>
      store.recordIssuance({ taskId, jti, agent, exp }, now);

    beforeEach(() => {
      t0 = Date.now();
      clock = new ManualClock(t0);
      store = make();
    });
    afterEach(async () => {
      await Promise.all(opened.splice(0).map((s) => s.close()));
    });

    it('answers ping', async () => {
      await expect(store.ping()).resolves.toBeUndefined();
    });

    it('join tokens: taken once, whoever asks first; never after they expire', async () => {
      const rec = { spiffeId: 'spiffe://example.org/agent/new', createdBy: 'ops', createdAt: t0, expiresAt: t0 + 10 * MIN };
      await store.putJoinToken('h1', rec, t0);
      const takers = await Promise.all(Array.from({ length: 10 }, () => store.takeJoinToken('h1', t0 + 1000)));
      expect(takers.filter((r) => r !== null)).toEqual([rec]);
      expect(await store.takeJoinToken('h1', t0 + 2000)).toBeNull();
      expect(await store.takeJoinToken('never', t0)).toBeNull();
      await store.putJoinToken('h2', { ...rec, expiresAt: t0 + MIN }, t0);
      expect(await store.takeJoinToken('h2', t0 + 2 * MIN)).toBeNull(); // past its expiry, even if still stored
    });

    it('useOnce: true the first time, false while recorded, true again once forgotten', async () => {
      expect(await store.useOnce('dpop:k1:j1', t0 + 150, t0)).toBe(true);
      expect(await store.useOnce('dpop:k1:j1', t0 + 60_000, t0 + 10)).toBe(false);
      expect(await store.useOnce('dpop:k1:j2', t0 + 150, t0)).toBe(true);
      const many = await Promise.all(Array.from({ length: 20 }, () => store.useOnce('dpop:k1:race', t0 + 60_000, t0)));
      expect(many.filter(Boolean)).toHaveLength(1);
      await new Promise((r) => setTimeout(r, 300)); // Redis forgets on its own clock
      expect(await store.useOnce('dpop:k1:j1', t0 + 60_000, t0 + 300)).toBe(true);
    });

    it('round-trips a task record and isolates it from callers', async () => {
      const t = await newTask();
      expect(await store.getTask(t.id)).toEqual(t);
      t.scopes.push('mutated');
      const got = (await store.getTask(t.id))!;
      expect(got.scopes).toEqual(['repo:read', 'repo:write']);
      got.agents.length = 0;
      expect((await store.getTask(t.id))!.agents).toEqual([AGENT_A, AGENT_B]);
      const bare = await newTask({ purpose: undefined, onBehalfOf: undefined, tools: [] });
      const back = (await store.getTask(bare.id))!;
      expect(back).toEqual(bare);
      expect(back.onBehalfOf).toBeUndefined();
      expect(await store.getTask('no-such-task')).toBeNull();
    });

    it('lists the tasks not purged, latest purge first, a page at a time', async () => {
      const a = taskAt(t0);
      const b = taskAt(t0);
      const c = taskAt(t0);
      await store.createTask(a, t0 + 10 * MIN);
      await store.createTask(b, t0 + 30 * MIN);
      await store.createTask(c, t0 + 20 * MIN);
      expect(await store.listTasks(t0, 0, 10)).toEqual({ ids: [b.id, c.id, a.id], total: 3 });
      expect(await store.listTasks(t0, 1, 1)).toEqual({ ids: [c.id], total: 3 });
      expect(await store.listTasks(t0, 5, 10)).toEqual({ ids: [], total: 3 });
      // at a's purge instant it is gone from the inventory
      expect(await store.listTasks(t0 + 10 * MIN, 0, 10)).toEqual({ ids: [b.id, c.id], total: 2 });
    });

    it('counts issued, unexpired and per-agent credentials', async () => {
      const t = await newTask();
      expect(await store.taskCounts(t.id, t0)).toEqual({ issued: 0, unexpired: 0, byAgent: {} });
      expect(await issue(t.id, t0 + 5 * MIN, t0)).toBe('ok');
      expect(await issue(t.id, t0 + 5 * MIN, t0)).toBe('ok');
      expect(await issue(t.id, t0 + 5 * MIN, t0, AGENT_B)).toBe('ok');
      expect(await issue(t.id, t0 + 1000, t0, AGENT_B)).toBe('ok');
      expect(await store.taskCounts(t.id, t0 + 2000)).toEqual({
        issued: 4,
        unexpired: 3,
        byAgent: { [AGENT_A]: 2, [AGENT_B]: 2 },
      });
      // a credential expiring exactly at `now` is expired
      expect((await store.taskCounts(t.id, t0 + 5 * MIN)).unexpired).toBe(0);
      expect(await store.taskCounts('no-such-task', t0)).toEqual({ issued: 0, unexpired: 0, byAgent: {} });
    });

    it('checks the task on issuance: unknown, expired (deadline inclusive), closed', async () => {
      expect(await issue('no-such-task', t0 + MIN, t0)).toBe('task_unknown');
      const t = await newTask();
      expect(await issue(t.id, t0 + MIN, t.expiresAt - 1)).toBe('ok');
      expect(await issue(t.id, t0 + MIN, t.expiresAt)).toBe('task_expired');
      expect(await issue(t.id, t0 + MIN, t.expiresAt + MIN)).toBe('task_expired');
      await store.closeTask(t.id, t0 + 1000, 'done');
      expect(await issue(t.id, t0 + MIN, t0 + 2000)).toBe('task_closed');
      expect((await store.taskCounts(t.id, t0)).issued).toBe(1);
      const closedAtBirth = await newTask({ state: 'closed' });
      expect(await issue(closedAtBirth.id, t0 + MIN, t0)).toBe('task_closed');
    });

    it('closes once: counts credentials still active, then is idempotent', async () => {
      const t = await newTask();
      for (let i = 0; i < 3; i++) expect(await issue(t.id, t0 + 5 * MIN, t0 + 100)).toBe('ok');
      for (let i = 0; i < 2; i++) expect(await issue(t.id, t0 + 500, t0 + 100)).toBe('ok');
      const first = (await store.closeTask(t.id, t0 + 1000, 'task finished'))!;
      expect(first.revoked).toBe(3);
      expect(first.alreadyClosed).toBe(false);
      expect(first.record).toEqual({
        ...t,
        state: 'closed',
        closedAt: t0 + 1000,
        closeReason: 'task finished',
        revokedAtClose: 3,
      });
      expect(await store.getTask(t.id)).toEqual(first.record);

      const again = (await store.closeTask(t.id, t0 + 9000, 'again'))!;
      expect(again.alreadyClosed).toBe(true);
      expect(again.revoked).toBe(3);
      expect(again.record).toEqual(first.record); // first close's time and reason are kept
      expect(await issue(t.id, t0 + 5 * MIN, t0 + 9000)).toBe('task_closed');
      expect(await store.closeTask('no-such-task', t0, 'x')).toBeNull();
    });

    it('closing a task past its deadline revokes nothing', async () => {
      const t = await newTask();
      await issue(t.id, t0 + 15 * MIN, t0);
      const out = (await store.closeTask(t.id, t.expiresAt, 'expired'))!;
      expect(out).toMatchObject({ revoked: 0, alreadyClosed: false });
      expect(out.record).toMatchObject({ state: 'closed', revokedAtClose: 0, closedAt: t.expiresAt });
    });

    it('revokes one jti until its expiry', async () => {
      const t = await newTask();
      const jti = randomId();
      const other = randomId();
      await issue(t.id, t0 + 5 * MIN, t0, AGENT_A, jti);
      await issue(t.id, t0 + 5 * MIN, t0, AGENT_A, other);
      await issue(t.id, t0 + 5 * MIN, t0, AGENT_B);
      // what a cutoff at t0 (a lock) covers: every token issued up to then, per agent
      const all = { [AGENT_A]: t0, [AGENT_B]: t0 };
      expect(await store.revokedByIdentity(t.id, { ...all, 'spiffe://example.org/nobody': t0 }, t0 + 30)).toEqual({ [AGENT_A]: 2, [AGENT_B]: 1, 'spiffe://example.org/nobody': 0 });
      expect(await store.revokedByIdentity(t.id, { [AGENT_A]: t0 - 1 }, t0 + 30)).toEqual({ [AGENT_A]: 0 }); // issued after that cutoff
      expect(await store.revokeJti(t.id, jti, t0 + 5 * MIN, t0 + 10, AGENT_A, t0)).toBe(true);
      expect(await store.revokeJti(t.id, jti, t0 + 5 * MIN, t0 + 20, AGENT_A, t0)).toBe(false);
      expect((await store.taskCounts(t.id, t0 + 30)).unexpired).toBe(2);
      // the counts follow: one revoked one by one, and none once they expire
      expect(await store.revokedByIdentity(t.id, all, t0 + 30)).toEqual({ [AGENT_A]: 1, [AGENT_B]: 1 });
      expect(await store.revokedByIdentity(t.id, { [AGENT_A]: t0 }, t0 + 5 * MIN)).toEqual({ [AGENT_A]: 0 });
      const q = { taskId: t.id, identity: AGENT_A };
      expect((await store.facts({ ...q, jti })).jtiRevoked).toBe(true);
      expect((await store.facts({ ...q, jti: other })).jtiRevoked).toBe(false);
      // an already-expired credential needs no marker: nothing is written
      const stale = randomId();
      expect(await store.revokeJti(t.id, stale, t0 + 100, t0 + 100, AGENT_A, t0)).toBe(false);
      expect((await store.facts({ ...q, jti: stale })).jtiRevoked).toBe(false);
      const closed = (await store.closeTask(t.id, t0 + 40, 'done'))!;
      expect(closed.revoked).toBe(2); // revoked one by one is not counted again (A's other token and B's)
    });

    it('reads a delegated credential\'s lineage with its facts: any ancestor jti revoked, any ancestor agent locked', async () => {
      const t = await newTask();
      const [own, parent, grand] = [randomId(), randomId(), randomId()];
      const q = { taskId: t.id, jti: own, identity: AGENT_B, lineage: { jtis: [parent, grand], identities: [AGENT_A, AGENT_B] } };
      expect(await store.facts(q)).toMatchObject({ jtiRevoked: false, identity: { locked: false, revokedBefore: 0 } });
      await store.revokeJti(t.id, grand, t0 + 5 * MIN, t0, AGENT_B, t0);
      expect((await store.facts(q)).jtiRevoked).toBe(true);
      expect((await store.facts({ ...q, lineage: { jtis: [parent], identities: [AGENT_A] } })).jtiRevoked).toBe(false);
      await store.lockIdentity(AGENT_A, t0 + 10);
      expect((await store.facts({ ...q, lineage: { jtis: [parent], identities: [AGENT_A] } })).identity).toMatchObject({ locked: true, revokedBefore: t0 + 10 });
      await store.unlockIdentity(AGENT_A, t0 + 20, t0 + 10 * MIN);
      expect((await store.facts({ ...q, lineage: { jtis: [parent], identities: [AGENT_A] } })).identity).toMatchObject({ locked: false, revokedBefore: t0 + 10 });
      expect((await store.facts({ taskId: t.id, jti: own, identity: AGENT_B })).identity).toMatchObject({ locked: false, revokedBefore: 0 });
    });

    it('reads the facts of a credential in one call', async () => {
      const t = await newTask();
      const facts = await store.facts({ taskId: t.id, jti: randomId(), identity: AGENT_A, principal: 'user:bob' });
      expect(facts).toEqual({
        task: { state: 'open', expiresAt: t.expiresAt, createdAt: t.createdAt, onBehalfOf: 'user:bob' },
        jtiRevoked: false,
        identity: { locked: false, revokedBefore: 0 },
        principalRevokedBefore: 0,
      });
      const none = await store.facts({ taskId: 'no-such-task', identity: AGENT_B });
      expect(none).toEqual({
        task: null,
        jtiRevoked: false,
        identity: { locked: false, revokedBefore: 0 },
        principalRevokedBefore: 0,
      });
      await store.closeTask(t.id, t0 + 5, 'done');
      expect((await store.facts({ taskId: t.id, identity: AGENT_A })).task?.state).toBe('closed');
    });

    it('locks and unlocks an identity, keeping revokedBefore and the cutoff of each lock', async () => {
      expect(await store.identityState(AGENT_A)).toEqual({ locked: false, revokedBefore: 0 });
      const locked = { locked: true, lockedAt: t0 + 1, revokedBefore: t0 + 1 };
      expect(await store.lockIdentity(AGENT_A, t0 + 1)).toEqual(locked);
      expect(await store.identityState(AGENT_A)).toEqual({ ...locked, locks: [t0 + 1] });
      expect((await store.facts({ taskId: 'x', identity: AGENT_A })).identity).toEqual({ ...locked, locks: [t0 + 1] });
      expect(await store.identityState(AGENT_B)).toEqual({ locked: false, revokedBefore: 0 });

      const unlocked = { locked: false, revokedBefore: t0 + 1 };
      expect(await store.unlockIdentity(AGENT_A, t0 + 5, t0 + 60 * MIN)).toEqual(unlocked);
      expect(await store.identityState(AGENT_A)).toEqual({ ...unlocked, locks: [t0 + 1] });
      expect((await store.facts({ taskId: 'x', identity: AGENT_A })).identity).toEqual({ ...unlocked, locks: [t0 + 1] });

      expect(await store.lockIdentity(AGENT_A, t0 + 9)).toEqual({ locked: true, lockedAt: t0 + 9, revokedBefore: t0 + 9 });
      // revokedBefore never moves backwards, even for a lock stamped earlier; a lock of a locked
      // identity adds no cutoff to its history
      expect((await store.lockIdentity(AGENT_A, t0 + 2)).revokedBefore).toBe(t0 + 9);
      expect((await store.identityState(AGENT_A)).locks).toEqual([t0 + 1, t0 + 9]);
      expect(await store.unlockIdentity('spiffe://example.org/never', t0, t0 + MIN)).toEqual({
        locked: false,
        revokedBefore: 0,
      });
    });

    it('keeps the latest LOCK_HISTORY lock cutoffs', async () => {
      for (let i = 1; i <= LOCK_HISTORY + 4; i++) {
        await store.lockIdentity(AGENT_B, t0 + i * 10);
        await store.unlockIdentity(AGENT_B, t0 + i * 10 + 5, t0 + 60 * MIN);
      }
      const locks = (await store.identityState(AGENT_B)).locks!;
      expect(locks).toHaveLength(LOCK_HISTORY);
      expect(locks[0]).toBe(t0 + 50);
      expect(locks.at(-1)).toBe(t0 + (LOCK_HISTORY + 4) * 10);
    });

    it("keeps a principal's revocation cutoffs, oldest first (the latest LOCK_HISTORY)", async () => {
      const p = 'user:history@example.com';
      expect(await store.principalCutoffs(p)).toEqual([]);
      for (let i = 1; i <= LOCK_HISTORY + 3; i++) await store.revokePrincipal(p, t0 + i * 10, t0 + 60 * MIN);
      const cutoffs = await store.principalCutoffs(p);
      expect(cutoffs).toHaveLength(LOCK_HISTORY);
      expect(cutoffs[0]).toBe(t0 + 40);
      expect(cutoffs.at(-1)).toBe(t0 + (LOCK_HISTORY + 3) * 10);
      expect(await store.principalRevokedBefore(p)).toBe(t0 + (LOCK_HISTORY + 3) * 10);
    });

    it('revokes a principal; the instant never moves backwards', async () => {
      const p = 'user:carol';
      expect(await store.principalRevokedBefore(p)).toBe(0);
      expect(await store.revokePrincipal(p, t0 + 10, t0 + 60 * MIN)).toBe(t0 + 10);
      expect(await store.revokePrincipal(p, t0 + 5, t0 + 60 * MIN)).toBe(t0 + 10);
      expect(await store.principalRevokedBefore(p)).toBe(t0 + 10);
      expect(await store.revokePrincipal(p, t0 + 20, t0 + 30 * MIN)).toBe(t0 + 20);
      expect((await store.facts({ taskId: 'x', identity: AGENT_A, principal: p })).principalRevokedBefore).toBe(t0 + 20);
      await store.revokePrincipal('user:dan', t0, t0 + 5 * MIN);
      expect((await store.revokedPrincipals(t0)).sort((x, y) => (x.principal < y.principal ? -1 : 1))).toEqual([
        { principal: p, revokedBefore: t0 + 20 },
        { principal: 'user:dan', revokedBefore: t0 },
      ]);
      // no longer listed once it is forgotten (nothing it covered can still live)
      expect((await store.revokedPrincipals(t0 + 10 * MIN)).map((x) => x.principal)).toEqual([p]);
    });

    it('audit events appended together (one event-loop turn, more than one batch) keep their order and each get their own id', async () => {
      const before = await store.readAudit('', 10_000);
      const after = before.length ? before[before.length - 1]!.id : '0';
      const n = 600; // RedisStore batches up to 256 events per call
      const ids = await Promise.all(Array.from({ length: n }, (_, i) => store.appendAudit({ type: 'token.granted', n: String(i), ...(i % 7 ? {} : { extra: 'x'.repeat(i) }) })));
      expect(new Set(ids).size).toBe(n);
      const read = await store.readAudit(after, 10_000);
      expect(read.map((e) => e.id)).toEqual(ids);
      expect(read.map((e) => e.event.n)).toEqual(ids.map((_, i) => String(i)));
      expect(read[7]!.event.extra).toBe('x'.repeat(7));
      await expect(store.appendAudit({})).rejects.toThrow();
    });

    it('appends audit events and pages through them', async () => {
      const ids: string[] = [];
      for (let i = 0; i < 5; i++) ids.push(await store.appendAudit({ type: 'token.issued', n: String(i) }));
      expect(new Set(ids).size).toBe(5);
      const all = await store.readAudit('', 10);
      expect(all.map((e) => e.id)).toEqual(ids);
      expect(all.map((e) => e.event)).toEqual([0, 1, 2, 3, 4].map((n) => ({ type: 'token.issued', n: String(n) })));
      expect((await store.readAudit('0', 10)).map((e) => e.id)).toEqual(ids);

      const pages: string[][] = [];
      let after = '0';
      for (;;) {
        const page = await store.readAudit(after, 2);
        if (page.length === 0) break;
        pages.push(page.map((e) => e.event.n!));
        after = page[page.length - 1]!.id;
      }
      expect(pages).toEqual([['0', '1'], ['2', '3'], ['4']]);
      expect(await store.readAudit(ids[4]!, 10)).toEqual([]);
    });

    it('appends a revocation once per key, however many ask at once', async () => {
      const until = Date.now() + 60_000;
      const tries = await Promise.all(Array.from({ length: 6 }, (_, i) => store.appendRevocation({ type: 'token.revoked', n: String(i) }, 3_600_000, { key: 'jti:t:j1', until })));
      const made = tries.filter((id): id is string => id !== null);
      expect(made).toHaveLength(1);
      expect(await store.appendRevocation({ type: 'token.revoked' }, 3_600_000, { key: 'jti:t:j2', until })).toMatch(/^\d+-\d+$/);
      const listed = (await store.readRevocations('', 100)).map((e) => e.id);
      expect(listed).toContain(made[0]);
      expect(listed).toHaveLength(2);
    });

    it('feeds revocations in order, resumable by cursor, and wakes waiters', async () => {
      expect(await store.revocationCursor()).toEqual({ latest: '0-0', maxDeleted: '0-0' });
      const ids: string[] = [];
      for (const type of ['task.closed', 'identity.locked', 'token.revoked']) ids.push(await store.appendRevocation({ type, n: type }, 3_600_000));
      expect((await store.readRevocations('', 10)).map((e) => e.event.type)).toEqual(['task.closed', 'identity.locked', 'token.revoked']);
      expect((await store.readRevocations(ids[0]!, 10)).map((e) => e.id)).toEqual(ids.slice(1));
      expect((await store.revocationCursor()).latest).toBe(ids[2]);
      // a waiter for what is already there returns at once; one for the future wakes on the append
      await store.waitRevocations(ids[1]!, 5000);
      const waiting = store.waitRevocations(ids[2]!, 5000);
      const appended = store.appendRevocation({ type: 'principal.revoked' }, 3_600_000);
      const t = Date.now();
      await waiting;
      expect(Date.now() - t).toBeLessThan(3000);
      expect((await store.readRevocations(ids[2]!, 10)).map((e) => e.id)).toEqual([await appended]);
      // a wait with nothing new ends by timeout
      await store.waitRevocations(await appended, 50);
    });

    it('trims the feed by age and says how far trimming reached', async () => {
      const big = 3_600_000;
      const ids: string[] = [];
      // more than one Redis stream node (100 entries): the trim is exact across node boundaries
      for (let i = 0; i < 250; i++) ids.push(await store.appendRevocation({ type: 'token.revoked', n: String(i) }, big));
      expect((await store.revocationCursor()).maxDeleted).toBe('0-0'); // nothing trimmed yet: no cursor is stale
      clock.advance(20);
      await new Promise((r) => setTimeout(r, 20));
      const last = await store.appendRevocation({ type: 'task.closed' }, 10); // keep only the last 10 ms
      const { latest, maxDeleted } = await store.revocationCursor();
      expect(latest).toBe(last);
      const older = (x: string, y: string) => compareIds(parseId(x), parseId(y)) < 0;
      expect(older(ids[0]!, maxDeleted)).toBe(true); // a reader at the start may have missed events
      expect(older(last, maxDeleted)).toBe(false); // one that is caught up has not
      const kept = await store.readRevocations('', 1000);
      expect(kept.map((e) => e.id)).toEqual([last]); // exactly what the window holds
      for (const e of kept) expect(older(maxDeleted, e.id)).toBe(true); // everything kept lies after it
    });

    it('a quiet feed is trimmed as exactly: a reader away longer than the window is stale', async () => {
      const a = await store.appendRevocation({ type: 'identity.locked' }, 3_600_000);
      const b2 = await store.appendRevocation({ type: 'identity.unlocked' }, 3_600_000);
      clock.advance(20);
      await new Promise((r) => setTimeout(r, 20));
      const c = await store.appendRevocation({ type: 'task.closed' }, 10);
      const { maxDeleted } = await store.revocationCursor();
      const older = (x: string, y: string) => compareIds(parseId(x), parseId(y)) < 0;
      expect(older(a, maxDeleted)).toBe(true); // away since a, so it missed b2: resync
      expect(older(c, maxDeleted)).toBe(false);
      expect((await store.readRevocations('', 10)).map((e) => e.id)).toEqual([c]);
    });

    it('keeps one built CRL for every process that shares it, with build claims (shared stores only)', async () => {
      if (!store.getOrClaimCrl || !store.putCrl) {
        expect(name).toBe('memory'); // one process: nothing to share
        return;
      }
      const CA = 'ab12';
      const get = (version: number, after: number, claimMs: number, now = t0 + 100) => store.getOrClaimCrl!(CA, version, after, claimMs, now);
      const put = (crl: { der: Buffer; version: number; builtAt: number }, ttlMs: number) => store.putCrl!(CA, crl, ttlMs);
      const der = (n: number) => Buffer.concat([Buffer.from(Array.from({ length: 256 }, (_, i) => i)), Buffer.alloc(400_000, n)]);
      /** The stored CRL it answers, as [version, builtAt, which der, previousAt]; or the claim, as [claim, at, previousAt] (relative to t0). */
      const seen = async (version: number, after: number, now?: number) => {
        const got = await get(version, after, 60_000, now);
        if ('claim' in got) return [got.claim, got.at - t0, got.previousAt && got.previousAt - t0];
        const n = [4, 5, 6, 7].find((k) => got.der.equals(der(k)));
        return [got.version, got.builtAt - t0, n, got.previousAt && got.previousAt - t0];
      };
      const after = t0 - 1000;
      expect(await seen(5, after, t0 + 10)).toEqual(['build', 10, 0]);
      expect(await seen(5, after, t0 + 20)).toEqual(['wait', 10, 0]); // claimed by the first caller, as of its instant
      expect(await seen(6, after, t0 + 30)).toEqual(['build', 30, 0]); // a later version takes the claim over
      await put({ der: der(5), version: 5, builtAt: t0 }, 60_000); // the older build still lands
      expect(await seen(5, after)).toEqual([5, 0, 5, 0]);
      expect(await seen(6, after, t0 + 40)).toEqual(['wait', 30, 0]); // 6 is still being built
      await put({ der: der(6), version: 6, builtAt: t0 + 1 }, 60_000);
      expect(await seen(5, after)).toEqual([6, 1, 6, 0]); // a later version serves an earlier request; it replaced the one built at t0
      await put({ der: der(4), version: 4, builtAt: t0 + 2 }, 60_000); // never replaces a later version
      await put({ der: der(7), version: 6, builtAt: t0 }, 60_000); // nor a later build of the same
      expect(await seen(6, after)).toEqual([6, 1, 6, 0]);
      // built too long ago: build anew, as of an instant after the stored one's even if the clock says otherwise
      expect(await seen(6, t0 + 1, t0 - 500)).toEqual(['build', 2, 1]);
      expect(await get(7, after, 1)).toMatchObject({ claim: 'build' });
      await new Promise((r) => setTimeout(r, 10));
      expect(await get(7, after, 60_000)).toMatchObject({ claim: 'build' }); // a claim lapses (its builder died)
      // another CA on the same store shares nothing with this one
      expect(await store.getOrClaimCrl('cd34', 1, after, 60_000, t0)).toMatchObject({ claim: 'build' });
      await store.putCrl('cd34', { der: der(4), version: 1, builtAt: t0 }, 60_000);
      expect(await seen(6, after)).toEqual([6, 1, 6, 0]);
      expect(await store.getOrClaimCrl('ab', 1, after, 60_000, t0)).toMatchObject({ claim: 'build' });
      await expect(store.getOrClaimCrl('../x', 1, after, 60_000, t0)).rejects.toThrow(TypeError);
    });

    it('lists the identities locked right now', async () => {
      await store.lockIdentity(AGENT_A, t0);
      await store.lockIdentity(AGENT_B, t0);
      await store.unlockIdentity(AGENT_B, t0 + 1, t0 + 10 * MIN);
      const locked = await store.lockedIdentities();
      expect(locked).toEqual([{ identity: AGENT_A, locked: true, lockedAt: t0, revokedBefore: t0, locks: [t0] }]);
    });

    it('records certificates in their task and indexes them for status and CRL queries', async () => {
      const t = await newTask();
      const cert = (serial: string, agent: string, iat: number, exp: number) => ({ serial, taskId: t.id, agent, principal: 'user:bob', issuedAt: iat, notAfter: exp });
      expect(await store.recordCertificate(cert('0a01', AGENT_A, t0, t0 + 5 * MIN), t0)).toBe('ok');
      expect(await store.recordCertificate(cert('0a02', AGENT_A, t0 + 1000, t0 + 5 * MIN), t0 + 1000)).toBe('ok');
      expect(await store.recordCertificate(cert('0b01', AGENT_B, t0, t0 + MIN), t0)).toBe('ok');
      expect(await store.getCertificate('0a01')).toEqual(cert('0a01', AGENT_A, t0, t0 + 5 * MIN));
      expect(await store.getCertificate('ffff')).toBeNull();
      expect((await store.taskCertificates(t.id, t0 + 2 * MIN)).sort()).toEqual(['0a01', '0a02']);
      expect((await store.holderCertificates('identity', AGENT_A, t0, t0)).map((c) => c.serial)).toEqual(['0a01']);
      expect((await store.holderCertificates('principal', 'user:bob', t0 + 1000, t0)).map((c) => c.serial).sort()).toEqual(['0a01', '0a02', '0b01']);
      expect((await store.taskCounts(t.id, t0)).issued).toBe(3);
      // closing counts certificates among the credentials it revokes
      expect((await store.closeTask(t.id, t0 + 2 * MIN, 'test'))!.revoked).toBe(2);
      expect(await store.recordCertificate(cert('0a03', AGENT_A, t0, t0 + 5 * MIN), t0 + 3 * MIN)).toBe('task_closed');
      expect(await store.getCertificate('0a03')).toBeNull();
      // every serial ever recorded, as 20-byte slots in recording order (the refused one is not there)
      expect(await store.taskSerialSlots(t.id, t0 + 3 * MIN)).toEqual(Buffer.concat(['0a01', '0a02', '0b01'].map(serialSlot)));
      expect(serialSlot('0a01')).toEqual(Buffer.from(`${'00'.repeat(18)}0a01`, 'hex'));
      expect(await store.taskSerialSlots('tsk_unknown', t0)).toEqual(Buffer.alloc(0));
    });

    it('asserts the issuer states with a certificate record, atomically; records nothing when they changed', async () => {
      if (!store.assertsIssuerState) {
        expect(name).toBe('redis cluster'); // the identity's key is in another slot: issuers read states fresh
        return;
      }
      const t = await newTask();
      const cert = (serial: string) => ({ serial, taskId: t.id, agent: AGENT_A, principal: 'user:bob', issuedAt: t0, notAfter: t0 + 5 * MIN });
      const seen = { identity: AGENT_A, revokedBefore: 0, principal: 'user:bob', principalCutoff: 0 };
      expect(await store.recordCertificate(cert('0e01'), t0, seen)).toBe('ok');
      // locked since: refused, whatever revokedBefore was expected
      const lock = await store.lockIdentity(AGENT_A, t0 + 1);
      expect(await store.recordCertificate(cert('0e02'), t0 + 2, seen)).toBe('state_changed');
      expect(await store.recordCertificate(cert('0e03'), t0 + 2, { ...seen, revokedBefore: lock.revokedBefore })).toBe('state_changed');
      // unlocked again: only the new cutoff holds
      await store.unlockIdentity(AGENT_A, t0 + 3, t0 + 10 * MIN);
      expect(await store.recordCertificate(cert('0e04'), t0 + 4, seen)).toBe('state_changed');
      const now = { ...seen, revokedBefore: lock.revokedBefore };
      expect(await store.recordCertificate(cert('0e05'), t0 + 4, now)).toBe('ok');
      // the principal revoked since
      const cutoff = await store.revokePrincipal('user:bob', t0 + 5, t0 + 30 * MIN);
      expect(await store.recordCertificate(cert('0e06'), t0 + 6, now)).toBe('state_changed');
      expect(await store.recordCertificate(cert('0e07'), t0 + 6, { ...now, principalCutoff: cutoff })).toBe('ok');
      // nothing of the refused ones was written
      for (const s of ['0e02', '0e03', '0e04', '0e06']) expect(await store.getCertificate(s)).toBeNull();
      expect((await store.taskCertificates(t.id, t0)).sort()).toEqual(['0e01', '0e05', '0e07']);
      expect((await store.taskCounts(t.id, t0)).issued).toBe(3);
      expect(await store.taskSerialSlots(t.id, t0)).toEqual(Buffer.concat(['0e01', '0e05', '0e07'].map(serialSlot)));
      expect((await store.holderCertificates('identity', AGENT_A, t0 + 10, t0)).map((c) => c.serial).sort()).toEqual(['0e01', '0e05', '0e07']);
    });

    it('decides certificates recorded together (one event-loop turn) each on its own, and writes the grant of each one recorded', async () => {
      const open = await newTask();
      const closed = await newTask();
      await store.closeTask(closed.id, t0, 'done');
      const cert = (serial: string, taskId: string, agent = AGENT_A) => ({ serial, taskId, agent, principal: 'user:bob', issuedAt: t0, notAfter: t0 + 5 * MIN });
      await store.lockIdentity(AGENT_B, t0);
      const seen = (identity: string) => (store.assertsIssuerState ? { identity, revokedBefore: 0, principal: 'user:bob', principalCutoff: 0 } : undefined);
      // each with its grant's audit event (but the last), written only when it is recorded
      const grant = (serial: string) => ({ type: 'certificate.granted', serial, task_id: open.id });
      const out = await Promise.all([
        store.recordCertificate(cert('0f01', open.id), t0, seen(AGENT_A), grant('0f01')),
        store.recordCertificate(cert('0f02', closed.id), t0, seen(AGENT_A), grant('0f02')),
        store.recordCertificate(cert('0f03', 'tsk_unknown'), t0, seen(AGENT_A), grant('0f03')),
        store.recordCertificate(cert('0f04', open.id, AGENT_B), t0, seen(AGENT_B), grant('0f04')),
        store.recordCertificate(cert('0f05', open.id), t0, seen(AGENT_A)),
      ]);
      expect(out).toEqual(['ok', 'task_closed', 'task_unknown', store.assertsIssuerState ? 'state_changed' : 'ok', 'ok']);
      const recorded = store.assertsIssuerState ? ['0f01', '0f05'] : ['0f01', '0f04', '0f05'];
      const granted = (await store.readAudit('', 100)).map((e) => e.event).filter((e) => e.type === 'certificate.granted');
      expect(granted.map((e) => e.serial).sort()).toEqual(recorded.filter((x) => x !== '0f05'));
      expect(granted.find((e) => e.serial === '0f01')).toEqual(grant('0f01'));
      expect((await store.taskCertificates(open.id, t0)).sort()).toEqual(recorded);
      expect(await store.taskSerialSlots(open.id, t0)).toEqual(Buffer.concat(recorded.map(serialSlot)));
      for (const s of ['0f02', '0f03']) expect(await store.getCertificate(s)).toBeNull();
      expect(await store.getCertificate('0f05')).toEqual(cert('0f05', open.id));
    });

    it('counts unexpired certificates among the credentials, less those revoked by serial or covered by a lock', async () => {
      const t = await newTask();
      const s0 = Math.floor(t0 / 1000) * 1000 + 1000; // a whole second, after t0: cutoffs cover by the whole second
      const rec = (serial: string, agent: string, issuedAt: number, notAfter: number) => ({ serial, taskId: t.id, agent, issuedAt, notAfter });
      const a1 = rec('0f01', AGENT_A, s0 + 500, t0 + 5 * MIN);
      const a2 = rec('0f02', AGENT_A, s0 + 500, t0 + 5 * MIN);
      const b1 = rec('0f03', AGENT_B, s0 + 1100, t0 + 2 * MIN);
      for (const c of [a1, a2, b1]) expect(await store.recordCertificate(c, s0 + 1100)).toBe('ok');
      await store.recordIssuance({ taskId: t.id, jti: 'j-cert-count', agent: AGENT_A, exp: t0 + 5 * MIN, iat: s0 + 1100 }, s0 + 1100);
      expect(await store.taskCounts(t.id, s0 + 2000)).toMatchObject({ issued: 4, unexpired: 4 });
      expect(await store.revokeCertificate(a2, s0 + 2000)).toBe(true);
      expect(await store.revokeCertificate(a2, s0 + 2001)).toBe(false);
      expect((await store.taskCounts(t.id, s0 + 2000)).unexpired).toBe(3);
      expect((await store.taskCounts(t.id, s0 + 3 * MIN)).unexpired).toBe(2); // b1 expired
      // a lock with cutoff s0 covers a1 (issued in that whole second), not the token (s0 + 1100); a2 is already out
      expect(await store.revokedByIdentity(t.id, { [AGENT_A]: s0 }, s0 + 2000)).toEqual({ [AGENT_A]: 1 });
      expect(await store.revokedByIdentity(t.id, { [AGENT_A]: s0 + 999, [AGENT_B]: s0 + 999 }, s0 + 2000)).toEqual({ [AGENT_A]: 1, [AGENT_B]: 0 });
      expect(await store.revokedByIdentity(t.id, { [AGENT_B]: s0 + 2000 }, s0 + 2000)).toEqual({ [AGENT_B]: 1 });
      // the close counts what it made inactive: not the serial revoked before it
      expect((await store.closeTask(t.id, s0 + 3000, 'closed'))!.revoked).toBe(3);
    });

    it('lists the tokens a certificate attested, and refuses one once the certificate was revoked by serial', async () => {
      const t = await newTask();
      const c = { serial: '0d01', taskId: t.id, agent: AGENT_A, issuedAt: t0, notAfter: t0 + 5 * MIN };
      expect(await store.recordCertificate(c, t0)).toBe('ok');
      const token = (jti: string, exp: number) => ({ taskId: t.id, jti, agent: AGENT_A, exp, iat: t0 + 1000, attestedBy: '0d01' });
      expect(await store.recordIssuance(token('j-att-1', t0 + 2 * MIN), t0 + 1000)).toBe('ok');
      expect(await store.recordIssuance(token('j-att-2', t0 + 4 * MIN), t0 + 1000)).toBe('ok');
      // another certificate's, and one attested otherwise, are not its
      expect(await store.recordIssuance({ ...token('j-att-other', t0 + 4 * MIN), attestedBy: '0d02' }, t0 + 1000)).toBe('ok');
      expect(await store.recordIssuance({ taskId: t.id, jti: 'j-jwt', agent: AGENT_A, exp: t0 + 4 * MIN }, t0 + 1000)).toBe('ok');
      const listed = (now: number) => store.attestedTokens(t.id, '0d01', now).then((l) => [...l].sort((x, y) => x.exp - y.exp));
      expect(await listed(t0 + MIN)).toEqual([
        { jti: 'j-att-1', exp: t0 + 2 * MIN, iat: t0 + 1000 },
        { jti: 'j-att-2', exp: t0 + 4 * MIN, iat: t0 + 1000 },
      ]);
      expect(await listed(t0 + 3 * MIN)).toEqual([{ jti: 'j-att-2', exp: t0 + 4 * MIN, iat: t0 + 1000 }]); // the first has expired
      expect(await store.attestedTokens(t.id, 'ffff', t0)).toEqual([]);
      expect(await store.attestedTokens('tsk_unknown', '0d01', t0)).toEqual([]);
      // revoked by serial: no more tokens on it, nothing recorded for the refused one
      expect(await store.revokeCertificate(c, t0 + 2000)).toBe(true);
      const issued = (await store.taskCounts(t.id, t0 + 2000)).issued;
      expect(await store.recordIssuance(token('j-att-3', t0 + 3 * MIN), t0 + 3000)).toBe('certificate_revoked');
      expect((await store.taskCounts(t.id, t0 + 3000)).issued).toBe(issued);
      expect((await listed(t0 + 3000)).map((a) => a.jti)).toEqual(['j-att-1', 'j-att-2']);
      // a token attested by another certificate of the task is not refused
      expect(await store.recordIssuance({ ...token('j-att-4', t0 + 3 * MIN), attestedBy: '0d02' }, t0 + 3000)).toBe('ok');
    });

    it('lists the renewals a certificate attested, and refuses one once it was revoked by serial, recording nothing', async () => {
      const t = await newTask();
      const c = (serial: string, notAfter: number) => ({ serial, taskId: t.id, agent: AGENT_A, issuedAt: t0, notAfter });
      expect(await store.recordCertificate(c('0e10', t0 + 5 * MIN), t0)).toBe('ok');
      expect(await store.recordCertificate(c('0e11', t0 + 5 * MIN), t0, undefined, undefined, '0e10')).toBe('ok');
      expect(await store.recordCertificate(c('0e12', t0 + MIN), t0, undefined, undefined, '0e10')).toBe('ok');
      await store.recordIssuance({ taskId: t.id, jti: 'j-ren', agent: AGENT_A, exp: t0 + 2 * MIN, iat: t0, attestedBy: '0e10' }, t0);
      expect((await store.renewals(t.id, '0e10', t0)).sort((x, y) => (x.serial < y.serial ? -1 : 1))).toEqual([{ serial: '0e11', notAfter: t0 + 5 * MIN }, { serial: '0e12', notAfter: t0 + MIN }]);
      expect((await store.renewals(t.id, '0e10', t0 + 2 * MIN)).map((r) => r.serial)).toEqual(['0e11']); // 0e12 has expired
      expect((await store.attestedTokens(t.id, '0e10', t0)).map((a) => a.jti)).toEqual(['j-ren']); // renewals are not tokens
      expect(await store.renewals(t.id, '0e11', t0)).toEqual([]);
      // a renewal's record names the certificate that asked for it; one that is no renewal, none
      expect(await store.getCertificate('0e11')).toEqual({ ...c('0e11', t0 + 5 * MIN), renewalOf: '0e10' });
      expect(await store.getCertificate('0e10')).toEqual(c('0e10', t0 + 5 * MIN));
      expect(await store.revokeCertificate(c('0e10', t0 + 5 * MIN), t0 + 1000)).toBe(true);
      const granted = { type: 'certificate.granted', serial: '0e13' };
      expect(await store.recordCertificate(c('0e13', t0 + 5 * MIN), t0 + 2000, undefined, granted, '0e10')).toBe('certificate_revoked');
      expect((await store.renewals(t.id, '0e10', t0 + 2000)).map((r) => r.serial).sort()).toEqual(['0e11', '0e12']);
      // nothing of the refused one was written: no record, no slot, no count, no grant
      expect(await store.getCertificate('0e13')).toBeNull();
      expect(await store.taskSerialSlots(t.id, t0)).toEqual(Buffer.concat(['0e10', '0e11', '0e12'].map(serialSlot)));
      expect((await store.taskCounts(t.id, t0 + 2000)).issued).toBe(4); // three certificates and the token
      expect((await store.readAudit('', 100)).some((e) => e.event.serial === '0e13')).toBe(false);
    });

    it("keeps each serial's slot as its 20 bytes, big-endian and left-padded, whatever its length", async () => {
      const t = await newTask();
      const serials = ['1', 'abc', '7f'.repeat(8), 'ff'.repeat(20), '00ff00ff00ff00ff00ff00ff00ff00ff00ff00fe', '0123456789abcdefABCDEF0'];
      for (const serial of serials) expect(await store.recordCertificate({ serial, taskId: t.id, agent: AGENT_A, issuedAt: t0, notAfter: t0 + MIN }, t0)).toBe('ok');
      expect(await store.taskSerialSlots(t.id, t0)).toEqual(Buffer.concat(serials.map(serialSlot)));
      expect(serialSlot('ff'.repeat(20))).toEqual(Buffer.alloc(20, 0xff));
    });

    it('revokes certificates one by one and keeps CRL scopes and a version', async () => {
      const v0 = await store.crlVersion();
      const cert = (serial: string, notAfter: number) => ({ serial, taskId: 'no-such-task', agent: AGENT_A, issuedAt: t0 - MIN, notAfter });
      expect(await store.revokeCertificate(cert('0c01', t0 + 5 * MIN), t0)).toBe(true);
      expect(await store.revokeCertificate(cert('0c01', t0 + 5 * MIN), t0 + 1)).toBe(false);
      expect(await store.revokeCertificate(cert('0c02', t0), t0)).toBe(false); // already expired: nothing to list
      expect(await store.certificateRevokedAt('0c01')).toBe(t0);
      expect(await store.certificateRevokedAt('0c02')).toBe(0);
      expect(await store.revokedCertificates(t0 + MIN)).toEqual([{ serial: '0c01', revokedAt: t0 }]);
      expect(await store.revokedCertificates(t0 + 6 * MIN)).toEqual([]);
      await store.addCrlScope('task', 'tsk_a', t0 + 5 * MIN);
      await store.addCrlScope('identity', AGENT_A, t0 + 5 * MIN);
      expect(await store.crlScopes('task', t0)).toEqual(['tsk_a']);
      expect(await store.crlScopes('identity', t0 + 6 * MIN)).toEqual([]);
      expect(await store.crlVersion()).toBeGreaterThan(v0);
      const v1 = await store.bumpCrlVersion();
      expect(await store.crlVersion()).toBe(v1);
    });

    it('keeps resource servers\' usage reports in a log of their own, bounded alike', async () => {
      const small = make({ auditMaxLen: 10 });
      const decision = await small.appendAudit({ type: 'token.granted' });
      for (let i = 0; i < 300; i++) await small.appendAudit({ type: 'token.used', n: String(i) }, 'usage');
      expect((await small.readAudit('', 1000)).map((e) => e.id)).toEqual([decision]);
      const usage = await small.readAudit('', 1000, 'usage');
      expect(usage.length).toBeGreaterThanOrEqual(10);
      expect(usage.length).toBeLessThan(200);
      expect(usage.every((e) => e.event.type === 'token.used')).toBe(true);
    });

    it('keeps the audit stream bounded', async () => {
      const small = make({ auditMaxLen: 10 });
      let last = '';
      for (let i = 0; i < 500; i++) last = await small.appendAudit({ n: String(i) });
      const kept = await small.readAudit('', 1000);
      expect(kept.length).toBeGreaterThanOrEqual(10);
      expect(kept.length).toBeLessThan(200); // Redis trims approximately (MAXLEN ~), whole nodes at a time
      expect(kept[kept.length - 1]!.id).toBe(last);
    });
  });
}

describeStoreContract('memory', (clock, opts) => new MemoryStore({ clock, ...opts }));
describeStoreContract('redis', (_clock, opts) => new RedisStore({ url: redisUrl(), prefix: uniquePrefix(), ...opts }));
// the same contract on a Redis Cluster: every script and transaction must stay in one hash slot
const clusterUrls = inject('redisClusterUrls');
if (clusterUrls.length > 0) describeStoreContract('redis cluster', (_clock, opts) => new RedisStore({ cluster: clusterUrls, prefix: uniquePrefix(), ...opts }));
else describe.skip('Store contract: redis cluster (no REDIS_CLUSTER_URLS and no redis-server to build one)', () => it('runs on a cluster', () => undefined));

describe('MemoryStore expiry (driven by its clock)', () => {
  it('purges tasks, markers and identity records after their instants', async () => {
    const t0 = Date.now();
    const clock = new ManualClock(t0);
    const store = new MemoryStore({ clock });
    const t = taskAt(t0);
    await store.createTask(t, t0 + 20 * MIN);
    const jti = randomId();
    await store.recordIssuance({ taskId: t.id, jti, agent: AGENT_A, exp: t0 + 5 * MIN }, t0);
    await store.revokeJti(t.id, jti, t0 + 5 * MIN, t0, AGENT_A, t0);
    await store.lockIdentity(AGENT_A, t0);
    await store.lockIdentity(AGENT_B, t0);
    await store.unlockIdentity(AGENT_B, t0, t0 + 30 * MIN);
    await store.revokePrincipal('user:bob', t0, t0 + 30 * MIN);

    clock.set(t0 + 5 * MIN); // the marker dies with the credential
    expect((await store.facts({ taskId: t.id, jti, identity: AGENT_A })).jtiRevoked).toBe(false);
    clock.set(t0 + 20 * MIN - 1);
    expect(await store.getTask(t.id)).not.toBeNull();
    clock.set(t0 + 20 * MIN);
    expect(await store.getTask(t.id)).toBeNull();
    expect((await store.facts({ taskId: t.id, identity: AGENT_A })).task).toBeNull();
    expect(await store.recordIssuance({ taskId: t.id, jti: randomId(), agent: AGENT_A, exp: t0 + 25 * MIN }, t0)).toBe(
      'task_unknown',
    );
    clock.set(t0 + 30 * MIN);
    store.sweep();
    expect(await store.identityState(AGENT_B)).toEqual({ locked: false, revokedBefore: 0 });
    expect(await store.principalRevokedBefore('user:bob')).toBe(0);
    clock.set(t0 + 365 * 24 * 60 * MIN); // a lock never expires by itself
    expect((await store.identityState(AGENT_A)).locked).toBe(true);
    await store.close();
    await expect(store.ping()).rejects.toBeInstanceOf(StoreUnavailableError);
  });
});

describe('RedisStore on a real server', () => {
  let admin: Redis;
  const stores: RedisStore[] = [];
  const make = (url = redisUrl()): { store: RedisStore; prefix: string } => {
    const prefix = uniquePrefix();
    const store = new RedisStore({ url, prefix });
    stores.push(store);
    return { store, prefix };
  };
  const keysOf = async (pattern: string): Promise<string[]> => {
    const out: string[] = [];
    let cursor = '0';
    do {
      const [next, batch] = await admin.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
      out.push(...batch);
      cursor = next;
    } while (cursor !== '0');
    return out;
  };
  /** Records `n` credentials in batches (auto-pipelined), all expiring at `exp`. */
  const issueMany = async (store: RedisStore, taskId: string, n: number, exp: number, now: number): Promise<void> => {
    for (let done = 0; done < n; done += 1000) {
      const batch = Array.from({ length: Math.min(1000, n - done) }, (_, i) =>
        store.recordIssuance({ taskId, jti: randomId(), agent: i % 2 ? AGENT_A : AGENT_B, exp }, now),
      );
      expect(new Set(await Promise.all(batch))).toEqual(new Set(['ok']));
    }
  };

  beforeEach(() => {
    admin = new Redis(redisUrl());
  });
  afterEach(async () => {
    await Promise.all(stores.splice(0).map((s) => s.close()));
    await admin.quit();
  });

  it('puts every task key under the task hash tag, expiring no later than purgeAt', async () => {
    const { store, prefix } = make();
    const t0 = Date.now();
    const t = taskAt(t0);
    const purgeAt = t0 + 20 * MIN;
    await store.createTask(t, purgeAt);
    const jti = randomId();
    await store.recordIssuance({ taskId: t.id, jti, agent: AGENT_A, exp: t0 + 5 * MIN }, t0);
    await store.recordIssuance({ taskId: t.id, jti: randomId(), agent: AGENT_A, exp: t0 + 5 * MIN }, t0);
    await store.revokeJti(t.id, jti, t0 + 5 * MIN, t0, AGENT_A, t0);
    const keys = (await keysOf(`${prefix}task:*`)).sort();
    const base = `${prefix}task:{${t.id}}`;
    expect(keys).toEqual([base, `${base}:agents`, `${base}:creds`, `${base}:exp`, `${base}:rj:${jti}`].sort());
    const left = purgeAt - Date.now();
    for (const k of [base, `${base}:agents`, `${base}:creds`, `${base}:exp`]) {
      const pttl = await admin.pttl(k);
      expect(pttl, k).toBeGreaterThan(0);
      expect(pttl, k).toBeLessThanOrEqual(left + 50);
    }
    const markerTtl = await admin.pttl(`${base}:rj:${jti}`);
    expect(markerTtl).toBeGreaterThan(0);
    expect(markerTtl).toBeLessThanOrEqual(5 * MIN);
  });

  it('sends a batched script again in full when the server no longer holds it (SCRIPT FLUSH): the records and events land once', async () => {
    const { store } = make();
    const t0 = Date.now();
    const t = taskAt(t0);
    await store.createTask(t, t0 + 20 * MIN);
    const cert = (serial: string) => ({ serial, taskId: t.id, agent: AGENT_A, issuedAt: t0, notAfter: t0 + 5 * MIN });
    const first = await store.appendAudit({ type: 'before' });
    for (let round = 0; round < 2; round++) {
      await admin.script('FLUSH');
      // one event-loop turn: one RECORD_CERTIFICATES_ALL call and one XADD_MANY call
      const serials = [`0e${round}1`, `0e${round}2`];
      expect(await Promise.all(serials.map((s) => store.recordCertificate(cert(s), t0)))).toEqual(['ok', 'ok']);
      await Promise.all([store.appendAudit({ type: `r${round}a` }), store.appendAudit({ type: `r${round}b` })]);
      for (const s of serials) expect(await store.getCertificate(s)).toMatchObject({ serial: s, taskId: t.id });
    }
    expect((await store.readAudit(first, 10)).map((e) => e.event.type)).toEqual(['r0a', 'r0b', 'r1a', 'r1b']);
    expect(await store.taskCertificates(t.id, t0)).toHaveLength(4);
  });

  it('the CRL version counter lives as long as it is read, and the shared CRL never outlives it', async () => {
    const { store, prefix } = make();
    await store.bumpCrlVersion();
    const week = 7 * 86_400_000;
    await admin.pexpire(`${prefix}crl:version`, 60_000); // as if its last change were almost a week ago
    expect(await store.crlVersion()).toBe(1);
    expect(await admin.pttl(`${prefix}crl:version`)).toBeGreaterThan(week - 60_000); // reading renewed it
    expect(await store.getOrClaimCrl!('ab', 1, 0, 60_000, Date.now())).toMatchObject({ claim: 'build' });
    await store.putCrl!('ab', { der: Buffer.from('x'), version: 1, builtAt: Date.now() }, 30 * week); // a validity longer than the counter's life
    const pttl = await admin.pttl(`${prefix}{crl}:built:ab`);
    expect(pttl).toBeGreaterThan(0);
    expect(pttl).toBeLessThanOrEqual(week);
  });

  it('gives every key a TTL, except the capped streams and what an active lock must keep', async () => {
    const { store, prefix } = make();
    const t0 = Date.now();
    const t = taskAt(t0);
    await store.createTask(t, t0 + 20 * MIN);
    await store.recordIssuance({ taskId: t.id, jti: randomId(), agent: AGENT_A, exp: t0 + 5 * MIN }, t0);
    await store.recordCertificate({ serial: '0d01', taskId: t.id, agent: AGENT_A, principal: 'user:bob', issuedAt: t0, notAfter: t0 + 5 * MIN }, t0);
    await store.revokeCertificate({ serial: '0d01', taskId: t.id, agent: AGENT_A, principal: 'user:bob', issuedAt: t0, notAfter: t0 + 5 * MIN }, t0);
    await store.closeTask(t.id, t0, 'closed_by_operator');
    await store.addCrlScope('task', t.id, t0 + 10 * MIN);
    await store.addCrlScope('identity', AGENT_B, t0 + 10 * MIN);
    await store.addCrlScope('principal', 'user:bob', t0 + 10 * MIN);
    await store.lockIdentity(AGENT_B, t0);
    await store.revokePrincipal('user:bob', t0, t0 + 30 * MIN);
    await store.appendAudit({ type: 'x' });
    await store.appendRevocation({ type: 'x' }, 60 * MIN);
    await store.putJoinToken('h', { spiffeId: AGENT_A, createdBy: 'op', createdAt: t0, expiresAt: t0 + MIN }, t0);
    await store.useOnce('k', t0 + MIN, t0);
    await store.listTasks(t0, 0, 10);
    const keys = await keysOf(`${prefix}*`);
    const ttls = await Promise.all(keys.map(async (k) => [k.slice(prefix.length), await admin.pttl(k)] as const));
    const forever = ttls.filter(([, ttl]) => ttl === -1).map(([k]) => k).sort();
    // the audit stream is capped by count, the feed trimmed by age; a lock lasts until it is lifted
    expect(forever).toEqual(['audit', 'locked', `ident:${AGENT_B}`, 'revocations'].sort());
  });

  it('keeps certificate records as long again as the certificate lived, and holder indexes until their longest-lived one expires (at most one lifetime more)', async () => {
    const { store, prefix } = make();
    const t0 = Date.now();
    const t = taskAt(t0);
    await store.createTask(t, t0 + 20 * MIN);
    const rec = (serial: string, notAfter: number) => ({ serial, taskId: t.id, agent: AGENT_A, principal: 'user:bob', issuedAt: t0, notAfter });
    expect(await store.recordCertificate(rec('0c01', t0 + 10 * MIN), t0)).toBe('ok');
    expect(await store.recordCertificate(rec('0c02', t0 + 2 * MIN), t0)).toBe('ok'); // shorter-lived, later
    const between = (v: number, lo: number, hi: number) => {
      expect(v).toBeGreaterThan(lo);
      expect(v).toBeLessThanOrEqual(hi);
    };
    between(await admin.pttl(`${prefix}cert:0c01`), 19 * MIN, 20 * MIN);
    between(await admin.pttl(`${prefix}cert:0c02`), 3 * MIN, 4 * MIN);
    // (kept one lifetime longer when extended, so the certificates that follow need not extend it: scripts.ts HOLDER_ADD)
    for (const k of [`${prefix}ident:${AGENT_A}:certs`, `${prefix}prin:user:bob:certs`]) between(await admin.pttl(k), 9 * MIN, 20 * MIN);
    expect(await store.getCertificate('0c02')).toEqual(rec('0c02', t0 + 2 * MIN));
    expect((await store.holderCertificates('identity', AGENT_A, t0, t0)).map((c) => c.serial).sort()).toEqual(['0c01', '0c02']);
    // without a principal: no obo field, no principal index; issued later than it is recorded
    const alone = { serial: '0c03', taskId: t.id, agent: AGENT_B, issuedAt: t0 + MIN, notAfter: t0 + 4 * MIN };
    expect(await store.recordCertificate(alone, t0)).toBe('ok');
    expect(await store.getCertificate('0c03')).toEqual(alone);
    between(await admin.pttl(`${prefix}cert:0c03`), 6 * MIN, 7 * MIN);
    expect((await store.holderCertificates('identity', AGENT_B, t0 + MIN, t0)).map((c) => c.serial)).toEqual(['0c03']);
    expect((await store.holderCertificates('principal', 'user:bob', t0 + MIN, t0)).map((c) => c.serial).sort()).toEqual(['0c01', '0c02']);
    // the task's keys live until its purge instant, also after a second agent joined its counts
    for (const k of [`${prefix}task:{${t.id}}:certs`, `${prefix}task:{${t.id}}:agents`, `${prefix}task:{${t.id}}:serials`]) between(await admin.pttl(k), 19 * MIN, 20 * MIN);
  });

  it('prunes expired certificates from the task and holder indexes within 32 of its certificates, expired tokens at once', async () => {
    const { store, prefix } = make();
    const t0 = Date.now();
    const t = taskAt(t0);
    await store.createTask(t, t0 + 20 * MIN);
    const cert = (i: number, notAfter: number) => ({ serial: (0xd000 + i).toString(16), taskId: t.id, agent: AGENT_A, issuedAt: t0, notAfter });
    for (let i = 0; i < 5; i++) {
      expect(await store.recordCertificate(cert(i, t0 + 1000), t0)).toBe('ok');
      expect(await store.recordIssuance({ taskId: t.id, jti: `early-${i}`, agent: AGENT_A, exp: t0 + 1000 }, t0)).toBe('ok');
    }
    const base = `${prefix}task:{${t.id}}`;
    // the first ones expired: a token prunes them from the creds at once
    expect(await store.recordIssuance({ taskId: t.id, jti: 'late', agent: AGENT_A, exp: t0 + 10 * MIN }, t0 + 2000)).toBe('ok');
    expect(await admin.zcard(`${base}:creds`)).toBe(1);
    // the 33rd certificate of the task prunes its certificates and its holder's index
    for (let i = 5; i < 32; i++) expect(await store.recordCertificate(cert(i, t0 + 10 * MIN), t0 + 2000)).toBe('ok');
    expect(await admin.zcard(`${base}:certs`)).toBe(32);
    // what is read never shows the expired ones
    expect((await store.holderCertificates('identity', AGENT_A, t0, t0 + 2000)).length).toBe(27);
    expect(await store.taskCertificates(t.id, t0 + 2000)).toHaveLength(27);
    expect(await store.recordCertificate(cert(32, t0 + 10 * MIN), t0 + 2000)).toBe('ok');
    expect(await admin.zcard(`${base}:certs`)).toBe(28);
    expect(await admin.zcard(`${prefix}ident:${AGENT_A}:certs`)).toBe(28);
    expect((await store.taskCounts(t.id, t0 + 2000)).unexpired).toBe(29);
  });

  it("a certificates zset a prune emptied is made again with the task's purge instant", async () => {
    const { store, prefix } = make();
    const t0 = Date.now();
    const t = taskAt(t0);
    await store.createTask(t, t0 + 20 * MIN);
    const cert = (i: number, notAfter: number) => ({ serial: (0xe000 + i).toString(16), taskId: t.id, agent: AGENT_A, issuedAt: t0, notAfter });
    for (let i = 0; i < 32; i++) expect(await store.recordCertificate(cert(i, t0 + 1000), t0)).toBe('ok');
    const key = `${prefix}task:{${t.id}}:certs`;
    expect(await admin.zcard(key)).toBe(32);
    // the 33rd, after all 32 expired: its prune empties the zset (Redis deletes it), its ZADD makes it anew
    expect(await store.recordCertificate(cert(32, t0 + 10 * MIN), t0 + 2000)).toBe('ok');
    expect(await admin.zcard(key)).toBe(1);
    const pttl = await admin.pttl(key);
    expect(pttl).toBeGreaterThan(19 * MIN);
    expect(pttl).toBeLessThanOrEqual(20 * MIN);
  });

  it('keeps a locked identity forever and an unlocked one until retainUntil', async () => {
    const { store, prefix } = make();
    const t0 = Date.now();
    await store.revokePrincipal('user:bob', t0, t0 + 30 * MIN);
    expect(await admin.pttl(`${prefix}prin:user:bob`)).toBeGreaterThan(29 * MIN);
    await store.revokePrincipal('user:bob', t0 + 1, t0 + 10 * MIN); // never shortens the retention
    expect(await admin.pttl(`${prefix}prin:user:bob`)).toBeGreaterThan(29 * MIN);

    await store.lockIdentity(AGENT_A, t0);
    expect(await admin.pttl(`${prefix}ident:${AGENT_A}`)).toBe(-1);
    await store.unlockIdentity(AGENT_A, t0 + 1, t0 + 30 * MIN);
    const pttl = await admin.pttl(`${prefix}ident:${AGENT_A}`);
    expect(pttl).toBeGreaterThan(29 * MIN);
    expect(pttl).toBeLessThanOrEqual(30 * MIN);
    await store.lockIdentity(AGENT_A, t0 + 2);
    expect(await admin.pttl(`${prefix}ident:${AGENT_A}`)).toBe(-1);
  });

  it('closing a task with 10,000 credentials writes no per-credential keys', async () => {
    const { store, prefix } = make();
    const t0 = Date.now();
    const t = taskAt(t0);
    await store.createTask(t, t0 + 20 * MIN);
    await issueMany(store, t.id, 10_000, t0 + 5 * MIN, t0);
    const pattern = `${prefix}task:{${t.id}}*`;
    // the task, its creds, agents and expiry counts: none per credential
    expect((await keysOf(pattern)).length).toBe(4);
    const out = (await store.closeTask(t.id, t0 + 1000, 'done'))!;
    expect(out.revoked).toBe(10_000);
    expect((await keysOf(pattern)).length).toBe(4);
    expect(await store.taskCounts(t.id, t0 + 1000)).toEqual({
      issued: 10_000,
      unexpired: 10_000,
      byAgent: { [AGENT_A]: 5000, [AGENT_B]: 5000 },
    });
  });

  it('stays within 256 bytes of Redis memory per active credential', async () => {
    const { store, prefix } = make();
    const t0 = Date.now();
    const t = taskAt(t0);
    await store.createTask(t, t0 + 20 * MIN);
    await store.recordIssuance({ taskId: t.id, jti: randomId(), agent: AGENT_A, exp: t0 + 1 }, t0); // warm the script cache
    const usedBefore = usedMemory(await admin.info('memory'));
    await issueMany(store, t.id, 10_000, t0 + 5 * MIN, t0 + 2);
    const usedAfter = usedMemory(await admin.info('memory'));
    const base = `${prefix}task:{${t.id}}`;
    const creds = Number(await admin.call('MEMORY', 'USAGE', `${base}:creds`, 'SAMPLES', '0'));
    const agents = Number(await admin.call('MEMORY', 'USAGE', `${base}:agents`, 'SAMPLES', '0'));
    const expiries = Number(await admin.call('MEMORY', 'USAGE', `${base}:exp`, 'SAMPLES', '0'));
    const perCred = (creds + agents + expiries) / 10_000;
    const perCredInfo = (usedAfter - usedBefore) / 10_000;
    console.log(
      `Redis memory per active credential: ${perCred.toFixed(1)} B (MEMORY USAGE of creds zset, agents hash and expiry counts), ` +
        `${perCredInfo.toFixed(1)} B (INFO used_memory delta, noisier)`,
    );
    expect(await admin.zcard(`${base}:creds`)).toBe(10_000);
    expect(perCred).toBeLessThanOrEqual(256);
  });

  it('fails fast with StoreUnavailableError when Redis is down, without crashing', async () => {
    const { store } = make(`redis://127.0.0.1:${await deadPort()}`);
    const t0 = Date.now();
    const calls: Array<() => Promise<unknown>> = [
      () => store.ping(),
      () => store.recordIssuance({ taskId: 'x', jti: randomId(), agent: AGENT_A, exp: t0 + MIN }, t0),
      () => store.facts({ taskId: 'x', jti: 'y', identity: AGENT_A, principal: 'user:bob' }),
    ];
    for (let round = 0; round < 2; round++) {
      for (const call of calls) {
        const started = Date.now();
        await expect(call()).rejects.toBeInstanceOf(StoreUnavailableError);
        expect(Date.now() - started).toBeLessThan(3000);
      }
      await new Promise((r) => setTimeout(r, 300)); // let a reconnect attempt fail in between
    }
  });

  it.skipIf(!process.env.PATH?.split(':').some(hasRedisServer))(
    'resumes by itself when Redis comes back',
    async () => {
      const port = await deadPort();
      const start = () =>
        spawn('redis-server', ['--save', '', '--appendonly', 'no', '--port', String(port), '--bind', '127.0.0.1'], {
          stdio: 'ignore',
        });
      let server = start();
      try {
        const { store } = make(`redis://127.0.0.1:${port}`);
        await eventually(() => store.ping());
        server.kill('SIGKILL');
        await eventually(() => expect(store.ping()).rejects.toBeInstanceOf(StoreUnavailableError));
        server = start();
        await eventually(() => store.ping(), 5000);
      } finally {
        server.kill('SIGKILL');
      }
    },
  );
});

function usedMemory(info: string): number {
  return Number(/used_memory:(\d+)/.exec(info)?.[1] ?? NaN);
}

function hasRedisServer(dir: string): boolean {
  try {
    accessSync(`${dir}/redis-server`, constants.X_OK);
    return dir !== '' && !process.env.REDIS_URL;
  } catch {
    return false;
  }
}

/** Retries `fn` until it resolves (polling every 50 ms), up to `ms`. */
async function eventually(fn: () => Promise<unknown>, ms = 3000): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      await fn();
      return;
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}
