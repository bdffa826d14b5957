/**
 * Fail closed: when Redis cannot be reached nothing is issued and nothing is reported active (503 with a
 * clear message), nothing is half-written, and service resumes by itself when Redis returns.
 */
import { execFile } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, basic, http, OPERATOR, bearer, id, postJson, startTestBroker, WIDE_TASK, type TestBroker } from '../helpers/broker.js';
import { redisUrl, uniquePrefix } from '../helpers/redis.js';
import { Redis } from 'ioredis';
import { tcpProxy, type Proxy } from '../helpers/tcp-proxy.js';
import { openSse } from '../helpers/sse.js';
import { buildCsr } from '../unit/x509/helpers.js';
import { createLogger } from '../../src/audit/logger.js';

async function eventually<T>(fn: () => Promise<T>, check: (v: T) => boolean, ms = 8000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (check(v) || Date.now() > end) return v;
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('Redis unreachable', () => {
  let proxy: Proxy;
  let b: TestBroker;
  let a: ReturnType<typeof api>;
  beforeAll(async () => {
    proxy = await tcpProxy(redisUrl());
    b = await startTestBroker({ redisUrl: proxy.url });
    a = api(b);
  });
  afterAll(async () => {
    await b.close();
    await proxy.close();
  });

  it('refuses to issue, reports nothing active, and resumes when Redis returns', async () => {
    const orch = await b.attest('orch');
    const agent = await b.attest('agent-b');
    const task = (await a.openTask(WIDE_TASK, orch)).body.task_id;
    const token = (await a.exchange(agent, task)).body.access_token;
    expect((await a.introspect(token)).body.active).toBe(true);
    const kp = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const csr = buildCsr(kp.privateKey, kp.publicKey).toString('base64');
    const askCert = () =>
      postJson(`${b.url}/v1/certificates`, { task_id: task, csr: `-----BEGIN CERTIFICATE REQUEST-----\n${csr}\n-----END CERTIFICATE REQUEST-----\n` }, bearer(agent));
    const cert = await askCert();
    expect(cert.status).toBe(201);
    const dir = mkdtempSync(join(tmpdir(), 'mayfly-outage-'));
    const bundle = join(dir, 'bundle.pem');
    const leaf = join(dir, 'leaf.pem');
    writeFileSync(bundle, (await http(`${b.url}/v1/ca/bundle`)).text);
    writeFileSync(leaf, cert.body.certificate);
    const ocsp = async () =>
      (await promisify(execFile)('openssl', ['ocsp', '-issuer', bundle, '-CAfile', bundle, '-cert', leaf, '-url', `${b.url}/v1/ca/ocsp`, '-no_nonce'], { timeout: 10_000 }).catch((e: { stdout?: string; stderr?: string }) => e)) as { stdout?: string; stderr?: string };
    expect((await ocsp()).stdout).toMatch(/: good/);

    proxy.cut();
    const ready = await eventually(() => http(`${b.url}/readyz`), (r) => r.status === 503);
    expect(ready.status).toBe(503);

    const ex = await a.exchange(agent, task);
    expect(ex.status).toBe(503);
    expect(ex.body.error).toBe('temporarily_unavailable');
    expect(ex.body.error_description).toMatch(/store/);
    expect(ex.body.access_token).toBeUndefined();

    const intro = await a.introspect(token);
    expect(intro.status).toBe(503);
    expect(intro.body.active).toBeUndefined();

    expect((await a.openTask(WIDE_TASK, orch)).status).toBe(503);
    expect((await a.close(task, orch)).status).toBe(503);
    expect((await a.lock(id('agent/b'))).status).toBe(503);
    // a usage report is not acknowledged unless the audit trail holds it
    const usage = await postJson(`${b.url}/v1/audit/usage`, { events: [{ jti: 'j', task_id: task, decision: 'allowed' }] }, basic());
    expect(usage.status).toBe(503);
    expect((await http(`${b.url}/v1/tasks/${task}/certificates`, { headers: bearer(OPERATOR.token) })).status).toBe(503);
    // no certificate is signed, and no status or OCSP answer claims one is good
    const refused = await askCert();
    expect(refused.status).toBe(503);
    expect(refused.body.certificate).toBeUndefined();
    const status = await http(`${b.url}/v1/certificates/${cert.body.serial}`);
    expect(status.status).toBe(503);
    expect(status.body.status).toBeUndefined();
    const during = await ocsp(); // RFC 6960 tryLater: never "good" without the store
    expect(`${during.stdout ?? ''}${during.stderr ?? ''}`).toMatch(/trylater/i);
    expect(during.stdout ?? '').not.toMatch(/: good/);
    expect((await http(`${b.url}/healthz`)).status).toBe(200); // the process itself is fine

    proxy.restore();
    const back = await eventually(() => http(`${b.url}/readyz`), (r) => r.status === 200);
    expect(back.status).toBe(200);
    expect((await a.introspect(token)).body.active).toBe(true);
    // nothing was half-written during the outage: one credential issued, the task still open
    const shown = (await a.getTask(task, orch)).body;
    expect(shown.state).toBe('open');
    expect(shown.credentials.issued).toBe(2); // the token and the certificate from before the outage
    const certs = (await http(`${b.url}/v1/tasks/${task}/certificates`, { headers: bearer(OPERATOR.token) })).body;
    expect(certs.certificates.map((c: { serial: string }) => c.serial)).toEqual([cert.body.serial]);
    expect((await http(`${b.url}/v1/certificates/${cert.body.serial}`)).body.status).toBe('good');
    expect((await http(`${b.url}/v1/identities/${encodeURIComponent(id('agent/b'))}`, { headers: bearer(OPERATOR.token) })).body.locked).toBe(false);
    expect((await a.exchange(agent, task)).status).toBe(200);
    expect((await askCert()).status).toBe(201);
  });
});

describe('Redis unreachable under a revocation stream', () => {
  let proxy: Proxy;
  let b: TestBroker;
  beforeAll(async () => {
    proxy = await tcpProxy(redisUrl());
    // a heartbeat far longer than the wait below: the error must not wait for it
    b = await startTestBroker({ redisUrl: proxy.url, extra: { feed: { heartbeat: '60s' } } });
  });
  afterAll(async () => {
    await b.close();
    await proxy.close();
  });

  it('a subscriber is told at once (an error event, then the end), not at its next heartbeat', async () => {
    const sse = await openSse(`${b.url}/v1/revocations/stream`, basic());
    expect(sse.status).toBe(200);
    expect((await sse.next())?.event).toBe('snapshot');
    proxy.cut();
    const msg = await sse.next(10_000); // ~1 s here

    expect(msg?.event).toBe('error');
    expect(JSON.parse(msg!.data)).toMatchObject({ error: 'temporarily_unavailable' });
    expect(await sse.next(5000)).toBeNull(); // the stream ends: the reader reconnects, and resyncs
    sse.close();
    proxy.restore();
  });
});

describe('audit trail unwritable (its Redis stream key holds another type)', () => {
  let b: TestBroker;
  let a: ReturnType<typeof api>;
  let redis: Redis;
  const prefix = uniquePrefix();
  beforeAll(async () => {
    b = await startTestBroker({ prefix });
    a = api(b);
    redis = new Redis(redisUrl());
  });
  afterAll(async () => {
    redis.disconnect();
    await b.close();
  });

  it('withholds tokens and certificates whose grant cannot be audited, and hands them out again once it can', async () => {
    const orch = await b.attest('orch');
    const agent = await b.attest('agent-b');
    const task = (await a.openTask(WIDE_TASK, orch)).body.task_id;
    const kp = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const csr = `-----BEGIN CERTIFICATE REQUEST-----\n${buildCsr(kp.privateKey, kp.publicKey).toString('base64')}\n-----END CERTIFICATE REQUEST-----\n`;
    const askCert = () => postJson(`${b.url}/v1/certificates`, { task_id: task, csr }, bearer(agent));
    await redis.del(`${prefix}audit`);
    await redis.set(`${prefix}audit`, 'not a stream'); // every XADD to it now fails (WRONGTYPE)
    try {
      const ex = await a.exchange(agent, task);
      expect(ex.status).toBe(503);
      expect(ex.body.error).toBe('temporarily_unavailable');
      expect(ex.body.access_token).toBeUndefined();
      const cert = await askCert();
      expect(cert.status).toBe(503);
      expect(cert.body.certificate).toBeUndefined();
      // nothing it withheld counts as held: the token is not active, the certificate not good
      const shown = (await a.getTask(task, orch)).body.credentials;
      expect(shown).toMatchObject({ issued: 2, active: 0 });
      const certs = (await http(`${b.url}/v1/tasks/${task}/certificates`, { headers: bearer(OPERATOR.token) })).body.certificates as Array<{ status: string }>;
      expect(certs.map((c) => c.status)).toEqual(['revoked']);
      // and no task is opened without its event
      const opened = await a.openTask(WIDE_TASK, orch);
      expect(opened.status).toBe(503);
      expect(opened.body.task_id).toBeUndefined();
    } finally {
      await redis.del(`${prefix}audit`);
    }
    const ex = await a.exchange(agent, task);
    expect(ex.status).toBe(200);
    expect((await askCert()).status).toBe(201);
    const events = (await http(`${b.url}/v1/audit?task_id=${task}&limit=100`, { headers: bearer(OPERATOR.token) })).body.events as Array<{ type: string; jti?: string }>;
    expect(events.filter((e) => e.type === 'token.granted').map((e) => e.jti)).toEqual([(await a.introspect(ex.body.access_token)).body.jti]);
    expect(events.filter((e) => e.type === 'certificate.granted')).toHaveLength(1);
  });
});

describe('Redis unreachable, in the log', () => {
  let proxy: Proxy;
  let b: TestBroker;
  const lines: Array<{ level: number; msg: string; err?: string }> = [];
  beforeAll(async () => {
    proxy = await tcpProxy(redisUrl());
    b = await startTestBroker({ redisUrl: proxy.url, logger: createLogger('info', { write: (s: string) => void lines.push(JSON.parse(s)) }) });
  });
  afterAll(async () => {
    await b.close();
    await proxy.close();
  });

  it('says once that the store is lost (an error line), and once that it is back', async () => {
    const outage = () => lines.filter((l) => /store unreachable/.test(l.msg));
    const back = () => lines.filter((l) => /store reachable again/.test(l.msg));
    expect(outage()).toEqual([]);
    proxy.cut();
    await eventually(() => http(`${b.url}/readyz`), (r) => r.status === 503);
    // the reconnection attempts in between (several a second) add no line
    await new Promise((r) => setTimeout(r, 1500));
    expect(outage().length).toBe(1);
    expect(outage()[0]!.level).toBe(50); // pino's error level
    expect(back()).toEqual([]);
    proxy.restore();
    await eventually(() => http(`${b.url}/readyz`), (r) => r.status === 200);
    await eventually(async () => back().length, (n) => n > 0);
    expect(back().length).toBe(1);
    expect(outage().length).toBe(1);
  });

  it('a Redis that hangs (connected, answering nothing) is an outage in the log too', async () => {
    const count = (re: RegExp) => lines.filter((l) => re.test(l.msg)).length;
    const [lost, found] = [count(/store unreachable/), count(/store reachable again/)];
    proxy.stall();
    try {
      const r = await http(`${b.url}/readyz`); // its PING times out (1 s)
      expect(r.status).toBe(503);
      expect(await eventually(async () => count(/store unreachable/), (n) => n > lost)).toBe(lost + 1);
      expect(lines.filter((l) => /store unreachable/.test(l.msg)).at(-1)!.err).toMatch(/timed out/);
      expect(count(/store reachable again/)).toBe(found);
    } finally {
      proxy.unstall();
    }
    await eventually(() => http(`${b.url}/readyz`), (x) => x.status === 200);
    expect(count(/store reachable again/)).toBe(found + 1);
    expect(count(/store unreachable/)).toBe(lost + 1);
  });
});
