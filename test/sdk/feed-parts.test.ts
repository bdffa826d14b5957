/**
 * The feed's parts on their own: the SSE parser, the revocation mirror (one definition of active, via
 * verdict()), and the stream client's reactions to what the real broker rarely does on cue: going
 * silent (half-open connection), asking for a resync, and ending with an error. Those use a small fake
 * SSE server; everything else about the feed is tested against the real broker.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { SseParser } from '../../src/sdk/verifier/sse.js';
import { RevocationMirror } from '../../src/sdk/verifier/mirror.js';
import { StreamFeed } from '../../src/sdk/verifier/feed-stream.js';
import type { MayflyClaims } from '../../src/sdk/verifier/result.js';
import { eventually } from './support.js';

describe('SseParser', () => {
  it('handles LF, CRLF and CR, chunks split anywhere, comments, multi-line data and sticky ids', () => {
    const text = ': hb\r\nid: 1-0\r\nevent: task.closed\r\ndata: {"a":\r\ndata: 1}\r\n\r\n: hb\n\nevent: x\rdata: two\r\rdata: three\n\n';
    for (const size of [1, 2, 3, 7, text.length]) {
      const p = new SseParser();
      const got = [];
      for (let i = 0; i < text.length; i += size) got.push(...p.push(text.slice(i, i + size)));
      expect(got, `chunk size ${size}`).toEqual([
        { event: 'task.closed', data: '{"a":\n1}', lastEventId: '1-0' },
        { event: 'x', data: 'two', lastEventId: '1-0' },
        { event: 'message', data: 'three', lastEventId: '1-0' },
      ]);
    }
  });
});

describe('RevocationMirror', () => {
  const at = (ms: number) => new Date(ms).toISOString();
  const now = Date.UTC(2030, 0, 1);
  const claims = (o: Partial<MayflyClaims> = {}): MayflyClaims => ({
    iss: 'i',
    sub: 'spiffe://td/a',
    aud: 'x',
    iat: now / 1000 - 60,
    exp: now / 1000 + 60,
    jti: 'j1',
    client_id: 'spiffe://td/a',
    scope: '',
    task_id: 'tsk_1',
    tools: [],
    ...o,
  });

  it('decides with verdict() from what the events said', () => {
    const m = new RevocationMirror();
    expect(m.verdict(claims(), now)).toEqual({ active: true });
    expect(m.verdict(claims({ exp: now / 1000 }), now)).toEqual({ active: false, reason: 'expired' });
    m.apply({ id: '1', type: 'task.closed', at: at(now), task_id: 'tsk_1' });
    expect(m.verdict(claims(), now)).toEqual({ active: false, reason: 'task_closed' });
    m.apply({ id: '2', type: 'token.revoked', at: at(now), jti: 'j2', task_id: 'tsk_2' });
    expect(m.verdict(claims({ jti: 'j2', task_id: 'tsk_2' }), now)).toEqual({ active: false, reason: 'jti_revoked' });
    m.apply({ id: '3', type: 'identity.locked', at: at(now), identity: 'spiffe://td/b', revoked_before: at(now) });
    expect(m.verdict(claims({ client_id: 'spiffe://td/b', task_id: 't3' }), now)).toEqual({ active: false, reason: 'identity_locked' });
    m.apply({ id: '4', type: 'identity.unlocked', at: at(now + 5000), identity: 'spiffe://td/b', revoked_before: at(now) });
    expect(m.verdict(claims({ client_id: 'spiffe://td/b', task_id: 't3' }), now + 5000)).toEqual({ active: false, reason: 'identity_revoked' });
    expect(m.verdict(claims({ client_id: 'spiffe://td/b', task_id: 't3', iat: now / 1000 + 2 }), now + 5000)).toEqual({ active: true });
    // a principal revocation covers tokens acting for it (act) issued up to revoked_before, same second included
    m.apply({ id: '5', type: 'principal.revoked', at: at(now), principal: 'user:p', revoked_before: at(now + 300) });
    const forP = (iat: number) => claims({ sub: 'user:p', act: { sub: 'spiffe://td/a' }, task_id: 't5', iat });
    expect(m.verdict(forP(now / 1000), now + 1000)).toEqual({ active: false, reason: 'task_principal_revoked' });
    expect(m.verdict(forP(now / 1000 + 1), now + 1000)).toEqual({ active: true });
    expect(m.verdict(claims({ sub: 'user:p', task_id: 't5' }), now)).toEqual({ active: true }); // no act: sub is the agent, not a principal
    m.apply({ id: '6', type: 'certificate.revoked', at: at(now), serial: '00AB:CD', task_id: 't6' });
    expect(m.isSerialRevoked('abcd')).toBe(true);
    m.apply({ id: '6b', type: 'certificate.revoked', at: at(now), serial: '0a1b', task_id: 't6' });
    expect(m.isSerialRevoked('0A1B')).toBe(true);
    expect(m.isSerialRevoked('a1b')).toBe(true); // odd length: a leading nibble of zero
    expect(m.apply({ id: '7', type: 'something.new', at: at(now) })).toBe(false);
  });

  it('prunes what can no longer matter, never a current lock', () => {
    const m = new RevocationMirror();
    m.apply({ id: '1', type: 'task.closed', at: at(now), task_id: 'old' });
    m.apply({ id: '2', type: 'identity.locked', at: at(now), identity: 'spiffe://td/locked', revoked_before: at(now) });
    m.apply({ id: '3', type: 'task.closed', at: at(now + 10_000), task_id: 'new' });
    m.prune(now + 5000);
    expect(m.counts()).toMatchObject({ closedTasks: 1, lockedIdentities: 1 });
    expect(m.isTaskClosed('new')).toBe(true);
  });
});

describe('StreamFeed against a misbehaving server', () => {
  let server: Server | undefined;
  afterEach(() => new Promise<void>((r) => (server ? (server.closeAllConnections(), server.close(() => r())) : r())));

  async function serve(handler: (req: IncomingMessage, res: ServerResponse, n: number) => void): Promise<string> {
    let n = 0;
    server = createServer((req, res) => handler(req, res, n++));
    await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
    return `http://127.0.0.1:${(server!.address() as { port: number }).port}`;
  }
  const sse = (res: ServerResponse) => res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store' });
  const snapshot = (res: ServerResponse, cursor: string, events: unknown[] = []) => res.write(`event: snapshot\nid: ${cursor}\ndata: ${JSON.stringify({ events, cursor })}\n\n`);

  function feed(url: string, clock = { now: () => Date.now() }, idleMs = 300) {
    const mirror = new RevocationMirror();
    return { mirror, f: new StreamFeed({ brokerUrl: url, credentials: { operatorToken: 'op' }, fetch: (...a) => fetch(...a), clock, mirror, retentionMs: 86_400_000, requestTimeoutMs: 5000 }, idleMs) };
  }

  it('replaces a connection gone silent and resumes from its cursor', async () => {
    const seen: (string | undefined)[] = [];
    const url = await serve((req, res, n) => {
      seen.push(req.headers['last-event-id'] as string | undefined);
      expect(req.headers.authorization).toBe('Bearer op');
      sse(res);
      if (n === 0) {
        snapshot(res, '5-0');
        res.write(`id: 6-0\nevent: task.closed\ndata: ${JSON.stringify({ id: '6-0', type: 'task.closed', at: new Date().toISOString(), task_id: 'tsk_a' })}\n\n`);
        // then nothing at all, not even heartbeats: a half-open connection
      } else res.write(': hb\n\n');
    });
    const { f, mirror } = feed(url);
    f.start();
    await f.whenSynced();
    await eventually(() => mirror.isTaskClosed('tsk_a'), (x) => x);
    await eventually(() => seen.length, (n) => n >= 2, 3000);
    expect(seen.slice(0, 2)).toEqual([undefined, '6-0']);
    f.close();
  });

  it('a connection gone silent stops counting as current after maxStalenessMs, before idleTimeoutMs replaces it', async () => {
    const url = await serve((_req, res) => {
      sse(res);
      snapshot(res, '5-0'); // then silence: a blackholed route, the socket still open
    });
    let t = 1_000_000;
    const { f } = feed(url, { now: () => t }, 60_000);
    f.start();
    await f.whenSynced();
    expect(f.isFresh(t, 3000)).toBe(true);
    t += 3001;
    expect(f.isFresh(t, 3000)).toBe(false); // still connected, never closed by the idle timer (60 s)
    f.close();
  });

  it('a stream the broker ends with an error (its store lost, silent since) is current only up to its last heartbeat', async () => {
    let end: () => void = () => undefined;
    const ended = new Promise<void>((r) => (end = r));
    const url = await serve((_req, res, n) => {
      sse(res);
      if (n > 0) return res.end(); // (later reconnections: nothing)
      snapshot(res, '5-0');
      res.write(': hb\n\n');
      // silence, then the broker's error event when it notices its store is gone
      void ended.then(() => res.end(`event: error\ndata: {"error":"temporarily_unavailable","error_description":"credential store unreachable"}\n\n`));
    });
    let t = 1_000_000;
    const { f } = feed(url, { now: () => t }, 60_000);
    f.start();
    await f.whenSynced();
    await eventually(() => f.isFresh(t, 3000), (x) => x, 3000);
    t += 2500; // silent for 2.5 s, then the error
    end();
    await eventually(() => f.status().lastError ?? '', (e) => /ended by the broker/.test(e), 3000);
    expect(f.isFresh(t, 3000)).toBe(true); // 2.5 s after the last heartbeat
    t += 501;
    expect(f.isFresh(t, 3000)).toBe(false); // 3 s after it: the error did not count as a sign of life
    f.close();
  });

  it('resuming from a cursor, the mirror counts as current only from the heartbeat after the replay', async () => {
    let release: () => void = () => undefined;
    const replay = new Promise<void>((r) => (release = r));
    let connections = 0;
    const url = await serve((_req, res, n) => {
      connections = n + 1;
      sse(res);
      if (n === 0) {
        snapshot(res, '5-0');
        setTimeout(() => res.end(), 50).unref(); // dropped: the verifier reconnects with its cursor
        return;
      }
      // the headers are out at once, the replay and the heartbeat after it come later
      res.flushHeaders();
      void replay.then(() => res.write(`id: 6-0\nevent: task.closed\ndata: ${JSON.stringify({ id: '6-0', type: 'task.closed', at: new Date().toISOString(), task_id: 'tsk_c' })}\n\n: hb\n\n`));
    });
    let t = 1_000_000;
    const { f, mirror } = feed(url, { now: () => t }, 60_000);
    f.start();
    await f.whenSynced();
    await eventually(() => f.status().state, (s) => s !== 'live', 3000);
    t += 10_000; // away long enough to be stale
    await eventually(() => connections, (c) => c >= 2, 3000); // reconnected: headers out, nothing else yet
    await new Promise((r) => setTimeout(r, 100));
    expect(f.isFresh(t, 3000)).toBe(false);
    expect(mirror.isTaskClosed('tsk_c')).toBe(false);
    release();
    await eventually(() => f.isFresh(t, 3000), (x) => x, 3000);
    expect(mirror.isTaskClosed('tsk_c')).toBe(true); // current again only with the close it missed
    f.close();
  });

  it('on resync drops its cursor and counts as stale until the next snapshot; on error reconnects', async () => {
    const seen: (string | undefined)[] = [];
    let release: () => void = () => undefined;
    const snapshotAllowed = new Promise<void>((r) => (release = r));
    const url = await serve((req, res, n) => {
      seen.push(req.headers['last-event-id'] as string | undefined);
      sse(res);
      if (n === 0) snapshot(res, '1-0');
      else if (n === 1) res.end(`event: error\ndata: {"error":"temporarily_unavailable","error_description":"store down"}\n\n`);
      else if (n === 2) res.end(`event: resync\ndata: {"error":"resync_required"}\n\n`);
      else void snapshotAllowed.then(() => snapshot(res, '9-0', [{ id: '8-0', type: 'task.closed', at: new Date().toISOString(), task_id: 'tsk_b' }]));
      setTimeout(() => res.end(), n === 0 ? 100 : 10_000).unref();
    });
    let t = Date.now();
    const clock = { now: () => t };
    const { f, mirror } = feed(url, clock, 5000);
    f.start();
    await f.whenSynced();
    expect(f.isFresh(t, 1000)).toBe(true);
    await eventually(() => seen.length, (n) => n >= 4, 5000);
    expect(seen.slice(0, 4)).toEqual([undefined, '1-0', '1-0', undefined]);
    expect(f.status().lastError).toMatch(/resync required/);
    expect(f.isFresh(t, 1000)).toBe(false); // waiting for the snapshot: not fresh, whatever the clock says
    release();
    await eventually(() => mirror.isTaskClosed('tsk_b'), (x) => x);
    t += 10;
    expect(f.isFresh(t, 1000)).toBe(true);
    expect(f.status()).toMatchObject({ state: 'live', cursor: '9-0' });
    f.close();
  });
});
