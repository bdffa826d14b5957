/**
 * Clients that stop half-way: one that closes its connection in the middle of a body costs the broker
 * nothing but an info line (never an error-level line any client could write at will), and the broker
 * keeps answering. A refused Bearer credential is challenged with an RFC 6750 error code.
 */
import { connect } from 'node:net';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/audit/logger.js';
import { basic, http, startTestBroker, type TestBroker } from '../helpers/broker.js';
import { openSse } from '../helpers/sse.js';
import { corpPki } from '../helpers/mtls.js';

describe('clients that go away', () => {
  const lines: Array<{ level: number; msg: string }> = [];
  let b: TestBroker;
  beforeAll(async () => {
    const sink = new Writable({
      write(chunk, _enc, cb) {
        for (const l of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(l));
        cb();
      },
    });
    b = await startTestBroker({ store: 'memory', logger: createLogger('info', sink) });
  });
  afterAll(() => b.close());

  it('a body cut off by its client is logged at info, not as an error', async () => {
    const { port } = new URL(b.url);
    const orch = await b.attest('orch');
    const requests = [
      ['/oauth/token', 'Content-Type: application/x-www-form-urlencoded', 'grant_type=urn'],
      ['/v1/tasks', `Content-Type: application/json\r\nAuthorization: Bearer ${orch}`, '{"agents": ['],
    ];
    for (const [path, headers, part] of requests) {
      await new Promise<void>((resolve, reject) => {
        const s = connect(Number(port), '127.0.0.1', () => {
          s.write(`POST ${path} HTTP/1.1\r\nHost: x\r\n${headers}\r\nContent-Length: 100\r\n\r\n${part}`);
          setTimeout(() => s.destroy(), 100);
        });
        s.on('close', () => resolve());
        s.on('error', reject);
      });
    }
    await new Promise((r) => setTimeout(r, 200));
    expect(lines.filter((l) => l.level >= 50)).toEqual([]);
    expect(lines.filter((l) => l.msg === 'client went away before its request arrived').length).toBe(2);
    expect((await http(`${b.url}/healthz`)).status).toBe(200);
  });

  it('requests Node refuses before the app (headers over 16 KiB, a malformed request line) get the standard error body', async () => {
    const { port } = new URL(b.url);
    const exchange = (bytes: string) =>
      new Promise<string>((resolve, reject) => {
        let got = '';
        const s = connect(Number(port), '127.0.0.1', () => s.write(bytes));
        s.on('data', (d) => (got += d.toString()));
        s.on('close', () => resolve(got));
        s.on('error', reject);
      });
    const big = await exchange(`POST /v1/tasks HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${'x'.repeat(17_000)}\r\n\r\n`);
    expect(big).toMatch(/^HTTP\/1\.1 431 /);
    expect(big).toMatch(/content-type: application\/json/i);
    expect(JSON.parse(big.slice(big.indexOf('\r\n\r\n') + 4))).toEqual({ error: 'invalid_request', error_description: expect.stringContaining('too large') });
    const garbage = await exchange('GET / HTTP/1.1 \x01\x02\r\n\r\n');
    expect(garbage).toMatch(/^HTTP\/1\.1 400 /);
    expect(JSON.parse(garbage.slice(garbage.indexOf('\r\n\r\n') + 4)).error).toBe('invalid_request');
    expect(lines.filter((l) => l.level >= 50)).toEqual([]);
    expect((await http(`${b.url}/healthz`)).status).toBe(200);
  });

  it('a connection that never sends a request is closed after limits.idle_timeout; the revocation stream, with its heartbeats, stays', async () => {
    const idle = await startTestBroker({ store: 'memory', extra: { limits: { idle_timeout: '1500ms' }, feed: { heartbeat: '300ms' } } });
    try {
      const { port } = new URL(idle.url);
      const closedAfter = await new Promise<number>((resolve, reject) => {
        const t0 = Date.now();
        const s = connect(Number(port), '127.0.0.1');
        s.on('close', () => resolve(Date.now() - t0));
        s.on('error', reject);
      });
      expect(closedAfter).toBeGreaterThanOrEqual(1400);
      expect(closedAfter).toBeLessThan(10_000);
      const sse = await openSse(`${idle.url}/v1/revocations/stream`, basic());
      expect((await sse.next())!.event).toBe('snapshot');
      // longer than the idle timeout: the heartbeats keep it open (a closed stream would answer null)
      await expect(sse.next(2500)).rejects.toThrow(/no SSE message/);
      expect(sse.comments).toBeGreaterThan(3);
      sse.close();
    } finally {
      await idle.close();
    }
  });

  it('over TLS, a connection that never finishes its handshake (silent, or a first byte only) is closed after limits.idle_timeout', async () => {
    const tlsPki = corpPki('mayfly-slow-tls-');
    const idle = await startTestBroker({
      store: 'memory',
      extra: { limits: { idle_timeout: '1500ms' }, feed: { heartbeat: '300ms' } },
      edit: (doc) => void Object.assign(doc.listen as object, { tls: { cert_file: tlsPki.p.file('server.pem'), key_file: tlsPki.p.file('server.key') } }),
    });
    try {
      const { port } = new URL(idle.url);
      const closedAfter = (first: string) =>
        new Promise<number>((resolve, reject) => {
          const t0 = Date.now();
          const s = connect(Number(port), '127.0.0.1', () => first && s.write(first, 'latin1'));
          s.on('close', () => resolve(Date.now() - t0));
          s.on('error', reject);
        });
      for (const ms of await Promise.all([closedAfter(''), closedAfter('\x16\x03\x01')])) {
        expect(ms).toBeGreaterThanOrEqual(1400);
        expect(ms).toBeLessThan(10_000);
      }
      expect((await tlsPki.call(`${idle.url}/healthz`)).status).toBe(200);
    } finally {
      await idle.close();
    }
  });

  it('a 401 challenges with what the endpoint takes, and an RFC 6750 code only for a refused Bearer credential', async () => {
    // client (Basic) or operator (Bearer) endpoints: the body says invalid_client, the challenge offers both
    for (const auth of [undefined, 'Bearer not-a-token', `Bearer ${await b.attest('agent-b')}`, 'Basic bm9wZTpub3Bl']) {
      const r = await http(`${b.url}/v1/certificates/00ff/revoke`, { method: 'POST', headers: auth ? { authorization: auth } : {} });
      expect(r.status, auth).toBe(401);
      expect(r.body.error).toBe('invalid_client');
      expect(r.headers.get('www-authenticate'), auth).toBe('Basic realm="mayfly", Bearer realm="mayfly"');
    }
    // Bearer endpoints: no credentials, no error code (RFC 6750 §3.1); a refused one, invalid_token
    const none = await http(`${b.url}/v1/tasks`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toBe('Bearer realm="mayfly"');
    const bad = await http(`${b.url}/v1/tasks`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: 'Bearer x.y.z' }, body: '{}' });
    expect(bad.status).toBe(401);
    expect(bad.headers.get('www-authenticate')).toBe('Bearer realm="mayfly", error="invalid_token"');
  });
});
