/**
 * The revocation feed: compact events (one per task close, lock, principal, token), a resumable
 * cursor, snapshots for readers without one, SSE with Last-Event-ID resume and heartbeats, and events
 * from every replica on the same Redis.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateKeyPairSync } from 'node:crypto';
import { api, basic, bearer, http, id, OPERATOR, postJson, startTestBroker, WIDE_TASK, type TestBroker, STORES } from '../helpers/broker.js';
import { buildCsr } from '../unit/x509/helpers.js';
import { uniquePrefix } from '../helpers/redis.js';
import { openSse } from '../helpers/sse.js';

describe.each(STORES)('revocation feed (%s)', (store) => {
  let b: TestBroker;
  let a: ReturnType<typeof api>;
  beforeAll(async () => {
    b = await startTestBroker({ store, extra: { feed: { heartbeat: '200ms' } } });
    a = api(b);
  });
  afterAll(() => b.close());
  const feed = (q = '') => http(`${b.url}/v1/revocations${q}`, { headers: basic() });

  it('requires a client or an operator', async () => {
    expect((await http(`${b.url}/v1/revocations`)).status).toBe(401);
    expect((await http(`${b.url}/v1/revocations`, { headers: bearer(OPERATOR.token) })).status).toBe(200);
    expect((await feed('?since=garbage')).status).toBe(400);
    expect((await feed('?limit=0')).status).toBe(400);
    // each parameter once, on the feed and its stream
    for (const q of ['?limit=5&limit=6', '?since=1-1&since=2-2']) expect((await feed(q)).status, q).toBe(400);
    expect((await http(`${b.url}/v1/revocations/stream?since=1-1&since=2-2`, { headers: basic() })).status).toBe(400);
    expect((await http(`${b.url}/v1/revocations/stream?since=`, { headers: basic() })).status).toBe(400);
  });

  it('answers a snapshot without a cursor, then only what is new, one event per revocation', async () => {
    const snap = (await feed()).body;
    expect(snap.resync).toBe(true);
    const orch = await b.attest('orch');
    const task = (await a.openTask(WIDE_TASK, orch)).body.task_id;
    const tokens = [];
    for (let i = 0; i < 5; i++) tokens.push((await a.exchange(await b.attest('agent-b'), task)).body.access_token);
    await a.revoke(tokens[0]);
    await a.revoke(tokens[0]); // revoked already: no second event
    await a.close(task, orch);
    await a.close(task, orch); // idempotent: no second event
    await a.lock(id('agent/a'));
    await a.revokePrincipal('user:carol@example.com');

    const page = (await feed(`?since=${snap.cursor}`)).body;
    expect(page.resync).toBe(false);
    expect(page.more).toBe(false);
    expect(page.events.map((e: { type: string }) => e.type)).toEqual(['token.revoked', 'task.closed', 'identity.locked', 'principal.revoked']);
    const [tok, closed, locked, prin] = page.events;
    expect(tok).toMatchObject({ task_id: task });
    expect(typeof tok.jti).toBe('string');
    expect(closed).toMatchObject({ task_id: task });
    expect(locked).toMatchObject({ identity: id('agent/a') });
    expect(prin).toMatchObject({ principal: 'user:carol@example.com' });
    for (const e of page.events) {
      expect(e.id).toMatch(/^\d+-\d+$/);
      expect(Date.parse(e.at)).not.toBeNaN();
    }
    expect(page.cursor).toBe(page.events.at(-1).id);
    expect((await feed(`?since=${page.cursor}`)).body.events).toEqual([]);

    // a new snapshot lists the current lock and everything in the window
    const snap2 = (await feed()).body;
    expect(snap2.resync).toBe(true);
    expect(snap2.events.filter((e: { type: string; identity?: string }) => e.type === 'identity.locked' && e.identity === id('agent/a')).length).toBeGreaterThanOrEqual(1);
    expect(snap2.events.some((e: { type: string; task_id?: string }) => e.type === 'task.closed' && e.task_id === task)).toBe(true);
    await a.lock(id('agent/a'), 'DELETE');
  });

  it('concurrent revocations of one token, task or serial are one event each', async () => {
    const start = (await feed()).body.cursor;
    const orch = await b.attest('orch');
    const agent = await b.attest('agent-b');
    const task = (await a.openTask(WIDE_TASK, orch)).body.task_id;
    const token = (await a.exchange(agent, task)).body.access_token;
    const kp = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const csr = `-----BEGIN CERTIFICATE REQUEST-----\n${buildCsr(kp.privateKey, kp.publicKey).toString('base64')}\n-----END CERTIFICATE REQUEST-----\n`;
    const cert = await postJson(`${b.url}/v1/certificates`, { task_id: task, csr }, bearer(agent));
    expect(cert.status, cert.text).toBe(201);
    const revokeSerial = () => http(`${b.url}/v1/certificates/${cert.body.serial}/revoke`, { method: 'POST', headers: bearer(OPERATOR.token) });
    const answers = await Promise.all(Array.from({ length: 8 }, () => [a.revoke(token), revokeSerial()]).flat());
    expect(answers.map((r) => r.status)).toEqual(answers.map(() => 200));
    const closes = await Promise.all(Array.from({ length: 8 }, () => a.close(task, orch)));
    expect(closes.map((r) => r.status)).toEqual(closes.map(() => 200));
    const events = (await feed(`?since=${start}`)).body.events as Array<{ type: string; task_id?: string }>;
    const mine = events.filter((e) => e.task_id === task).map((e) => e.type).sort();
    expect(mine).toEqual(['certificate.revoked', 'task.closed', 'token.revoked']);
  });

  it('unlocking an identity that is not locked changes nothing: no event, no audit entry', async () => {
    const start = (await feed()).body.cursor;
    const who = id('agent/never-locked');
    const r = await a.lock(who, 'DELETE');
    expect(r.status, r.text).toBe(200);
    expect(r.body).toEqual({ spiffe_id: who, locked: false, revoked_before: null });
    await a.lock(who);
    await a.lock(who, 'DELETE');
    await a.lock(who, 'DELETE'); // already unlocked
    const types = ((await feed(`?since=${start}`)).body.events as Array<{ type: string; identity?: string }>).filter((e) => e.identity === who).map((e) => e.type);
    expect(types).toEqual(['identity.locked', 'identity.unlocked']);
    const audit = (await http(`${b.url}/v1/audit?limit=1000`, { headers: bearer(OPERATOR.token) })).body.events as Array<{ type: string; identity?: string }>;
    expect(audit.filter((e) => e.identity === who).map((e) => e.type)).toEqual(['identity.locked', 'identity.unlocked']);
  });

  it('pages with limit and more', async () => {
    const start = (await feed()).body.cursor;
    for (let i = 0; i < 3; i++) await a.revokePrincipal(`user:p${i}@example.com`);
    const p1 = (await feed(`?since=${start}&limit=2`)).body;
    expect(p1.events).toHaveLength(2);
    expect(p1.more).toBe(true);
    const p2 = (await feed(`?since=${p1.cursor}&limit=2`)).body;
    expect(p2.events.map((e: { principal: string }) => e.principal)).toEqual(['user:p2@example.com']);
    // a page that ends exactly at the newest event: nothing more
    const exact = (await feed(`?since=${start}&limit=3`)).body;
    expect(exact.events).toHaveLength(3);
    expect(exact.more).toBe(false);
  });

  it('tells a reader whose cursor is ahead of the feed (never one of its cursors) to resync', async () => {
    const now = (await feed()).body.cursor as string;
    const ahead = `${Number(now.split('-')[0]) + 3_600_000}-0`;
    for (const since of [ahead, '99999999999999999-0']) {
      const r = (await feed(`?since=${since}`)).body;
      expect(r.resync, since).toBe(true);
      expect(r.cursor).toBe(now);
    }
  });

  it.runIf(store === 'memory')('tells a reader whose cursor is older than the window to resync', async () => {
    const before = (await feed()).body.cursor;
    await a.revokePrincipal('user:missed@example.com'); // the reader at `before` has not seen this one
    (b.clock as unknown as { advance(ms: number): void }).advance(60 * 60_000); // past the window (tokens.max_ttl + 1m)
    await a.revokePrincipal('user:someone@example.com'); // trims everything older than the window
    const stale = (await feed(`?since=${before}`)).body;
    expect(stale.resync).toBe(true);
    expect(stale.events.map((e: { principal?: string }) => e.principal)).toContain('user:someone@example.com');
  });

  it('streams events as SSE with id cursors, heartbeats, and Last-Event-ID resume', async () => {
    const sse = await openSse(`${b.url}/v1/revocations/stream`, basic());
    expect(sse.status).toBe(200);
    const snap = await sse.next();
    expect(snap!.event).toBe('snapshot');
    expect(JSON.parse(snap!.data).cursor).toBe(snap!.id);

    const orch = await b.attest('orch');
    const task = (await a.openTask(WIDE_TASK, orch)).body.task_id;
    await a.close(task, orch);
    const ev = await sse.next();
    expect(ev!.event).toBe('task.closed');
    expect(JSON.parse(ev!.data)).toMatchObject({ type: 'task.closed', task_id: task, id: ev!.id });
    await expect(sse.next(600)).rejects.toThrow(/no SSE message/); // idle: no event, only heartbeat comments
    expect(sse.comments).toBeGreaterThan(0);
    sse.close();

    // while disconnected, another revocation; resume from the last id seen
    await a.revokePrincipal('user:dave@example.com');
    const again = await openSse(`${b.url}/v1/revocations/stream`, { ...basic(), 'last-event-id': ev!.id! });
    const missed = await again.next();
    expect(missed!.event).toBe('principal.revoked');
    again.close();
  });

  it('streams that start together share one read of the window for their snapshot', async () => {
    for (let i = 0; i < 20; i++) await a.revokePrincipal(`user:crowd-${i}@example.com`);
    const store = b.running.broker.store;
    const read = store.readRevocations.bind(store);
    let windowReads = 0;
    store.readRevocations = (after, limit) => {
      if (after === '') windowReads++;
      return read(after, limit);
    };
    try {
      const streams = await Promise.all(Array.from({ length: 30 }, () => openSse(`${b.url}/v1/revocations/stream`, basic())));
      const snaps = await Promise.all(streams.map((s) => s.next()));
      for (const s of streams) s.close();
      // streams connecting in the same second get the same snapshot, as one string (on a loaded machine
      // the 30 connections may span a second boundary: one snapshot per read, plus perhaps one shared
      // from just before; never one per stream)
      const distinct = [...new Set(snaps.map((m) => m!.data))];
      expect(distinct.length).toBeLessThanOrEqual(windowReads + 1);
      expect(windowReads).toBeLessThan(10);
      // a shared snapshot may be up to a second old: with what follows its cursor, it holds everything
      for (const data of distinct) {
        const { events, cursor } = JSON.parse(data);
        const rest = (await feed(`?since=${cursor}`)).body.events;
        const principals = new Set([...events, ...rest].filter((e: { type: string }) => e.type === 'principal.revoked').map((e: { principal: string }) => e.principal));
        for (let i = 0; i < 20; i++) expect(principals.has(`user:crowd-${i}@example.com`)).toBe(true);
      }
    } finally {
      store.readRevocations = read;
    }
  });
});

describe('feed across replicas on one Redis', () => {
  let r1: TestBroker;
  let r2: TestBroker;
  beforeAll(async () => {
    const prefix = uniquePrefix();
    r1 = await startTestBroker({ prefix });
    r2 = await startTestBroker({ prefix });
  });
  afterAll(async () => {
    await r1.close();
    await r2.close();
  });

  it('a subscriber on one replica sees a close made on the other', async () => {
    const sse = await openSse(`${r2.url}/v1/revocations/stream`, basic());
    expect((await sse.next())!.event).toBe('snapshot');
    const a1 = api(r1);
    const orch = await r1.attest('orch');
    const task = (await a1.openTask(WIDE_TASK, orch)).body.task_id;
    await a1.close(task, orch);
    const ev = await sse.next();
    expect(JSON.parse(ev!.data)).toMatchObject({ type: 'task.closed', task_id: task });
    sse.close();
  });
});
