/**
 * The CRL as scopes come and go: a closed task, one serial, a locked identity, overlapping each other.
 * Pieces are encoded once and reused (src/ca/crl-service.ts); whatever the order, every revoked serial
 * is listed exactly once, nothing else is, and openssl accepts the signature each time.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { generateKeyPairSync, sign } from 'node:crypto';
import { api, bearer, http, id, OPERATOR, startTestBroker, WIDE_TASK, type TestBroker, STORES } from '../helpers/broker.js';
import { uniquePrefix } from '../helpers/redis.js';
import type { ManualClock } from '../../src/clock.js';
import type { Store } from '../../src/store/store.js';

const dir = mkdtempSync(join(tmpdir(), 'mayfly-crl-'));
const ossl = (...args: string[]) => execFileSync('openssl', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

/** A P-256 CSR (PKCS#10 DER written here: SEQUENCE { info, ecdsa-with-SHA256, signature }). */
function csrPem(): string {
  const tlv = (tag: number, body: Buffer) => {
    const n = body.length;
    const len = n < 0x80 ? [n] : n < 0x100 ? [0x81, n] : [0x82, n >> 8, n & 0xff];
    return Buffer.concat([Buffer.from([tag, ...len]), body]);
  };
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const subject = tlv(0x30, tlv(0x31, tlv(0x30, Buffer.concat([Buffer.from('0603550403', 'hex'), tlv(0x0c, Buffer.from('crl-test'))]))));
  const info = tlv(0x30, Buffer.concat([Buffer.from('020100', 'hex'), subject, publicKey.export({ type: 'spki', format: 'der' }), Buffer.from('a000', 'hex')]));
  const der = tlv(0x30, Buffer.concat([info, tlv(0x30, Buffer.from('06082a8648ce3d040302', 'hex')), tlv(0x03, Buffer.concat([Buffer.from([0]), sign('sha256', info, privateKey)]))]));
  return `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString('base64')}\n-----END CERTIFICATE REQUEST-----\n`;
}

describe.each(STORES)('CRL built from reusable pieces (%s)', (store) => {
  let b: TestBroker;
  let a: ReturnType<typeof api>;
  let bundle: string;
  let n = 0;
  beforeAll(async () => {
    b = await startTestBroker({ store });
    a = api(b);
    bundle = join(dir, `bundle-${store}.pem`);
    writeFileSync(bundle, (await http(`${b.url}/v1/ca/bundle`)).text);
  });
  afterAll(() => b.close());

  const issue = async (taskId: string, on: TestBroker = b): Promise<string> => {
    const r = await http(`${on.url}/v1/certificates`, {
      method: 'POST',
      headers: { ...bearer(await on.attest('agent-b')), 'content-type': 'application/json' },
      body: JSON.stringify({ task_id: taskId, csr: csrPem() }),
    });
    expect(r.status).toBe(201);
    return r.body.serial as string;
  };
  /** The serials the CRL lists (upper-case hex, as openssl prints them), after checking its signature. */
  const listed = async (on: TestBroker = b, caFile = bundle): Promise<string[]> => {
    const f = join(dir, `crl-${store}-${n++}.der`);
    writeFileSync(f, Buffer.from(await (await fetch(`${on.url}/v1/ca/crl`)).arrayBuffer()));
    // openssl crl reports the signature check on stderr ("verify OK" / "verify failure"), exiting 0 either way
    const r = spawnSync('openssl', ['crl', '-inform', 'DER', '-in', f, '-CAfile', caFile, '-noout', '-text'], { encoding: 'utf8' });
    expect(r.stderr.trim(), `CRL from ${on.url} checked against ${caFile}`).toBe('verify OK');
    return [...r.stdout.matchAll(/Serial Number: ([0-9A-F]+)/g)].map((m) => m[1]!.replace(/^0+/, ''));
  };
  /** The serials a CRL's DER lists (upper-case hex). */
  const listedIn = async (der: Buffer): Promise<string[]> => {
    const text = execFileSync('openssl', ['crl', '-inform', 'DER', '-noout', '-text'], { input: der, encoding: 'utf8' });
    return [...text.matchAll(/Serial Number: ([0-9A-F]+)/g)].map((m) => m[1]!.replace(/^0+/, ''));
  };
  const hex = (s: string) => s.toUpperCase().replace(/^0+/, '');
  const certStatus = async (serial: string) => (await http(`${b.url}/v1/certificates/${serial}`)).body as { status: string; reason: string; revoked_at: string };
  /** The CRL's revocation date of each serial (openssl's text form, parsed; upper-case hex). */
  const crlDates = async (): Promise<Map<string, number>> => {
    const f = join(dir, `crl-${store}-${n++}.der`);
    writeFileSync(f, Buffer.from(await (await fetch(`${b.url}/v1/ca/crl`)).arrayBuffer()));
    const text = execFileSync('openssl', ['crl', '-inform', 'DER', '-in', f, '-noout', '-text'], { encoding: 'utf8' });
    return new Map([...text.matchAll(/Serial Number: ([0-9A-F]+)\s+Revocation Date: ([^\n]+)/g)].map((m) => [m[1]!.replace(/^0+/, ''), Date.parse(m[2]!)]));
  };
  /** Two broker processes on one store and one CA (the keys directory they share): replicas. */
  /** Runs `fn` on two broker processes sharing one store and one CA (the keys directory): replicas, which share a store only through Redis. */
  const onReplicas = async (fn: (one: TestBroker, two: TestBroker) => Promise<void>) => {
    if (store === 'memory') return;
    const shared = { store, prefix: uniquePrefix(), keysDir: mkdtempSync(join(tmpdir(), 'mayfly-keys-')) };
    const one = await startTestBroker(shared);
    const two = await startTestBroker({ ...shared, signers: one.signers });
    try {
      await fn(one, two);
    } finally {
      await closeAll(two, one);
    }
  };
  const closeAll = async (...brokers: TestBroker[]) => {
    for (const x of brokers) await x.close();
  };
  const revokeSerial = (s: string) => http(`${b.url}/v1/certificates/${s}/revoke`, { method: 'POST', headers: bearer(OPERATOR.token) });

  it('lists each revoked serial once as tasks close, serials are revoked and identities locked', async () => {
    const taskA = (await a.openTask(WIDE_TASK)).body.task_id;
    const taskB = (await a.openTask(WIDE_TASK)).body.task_id;
    const inA = [await issue(taskA), await issue(taskA), await issue(taskA)];
    const inB = [await issue(taskB), await issue(taskB)];
    expect(await listed()).toEqual([]);

    expect((await a.close(taskA)).status).toBe(200);
    expect((await listed()).sort()).toEqual(inA.map(hex).sort());

    // one serial of the open task, then one already covered by the closed task
    expect((await revokeSerial(inB[0]!)).status).toBe(200);
    expect((await listed()).sort()).toEqual([...inA, inB[0]!].map(hex).sort());
    expect((await revokeSerial(inA[1]!)).status).toBe(200);
    expect((await listed()).sort()).toEqual([...inA, inB[0]!].map(hex).sort());

    // the identity holds all five: each still listed once
    expect((await a.lock(id('agent/b'))).status).toBe(200);
    expect((await listed()).sort()).toEqual([...inA, ...inB].map(hex).sort());
    expect((await a.lock(id('agent/b'), 'DELETE')).status).toBe(200);
    (b.clock as ManualClock).advance(1000); // in the unlock's own second a certificate would be revoked at birth: none is signed

    // a certificate issued after the unlock is not covered; closing its task lists it, once
    const later = await issue(taskB);
    expect(await listed()).not.toContain(hex(later));
    expect((await a.close(taskB)).status).toBe(200);
    const all = await listed();
    expect(all.sort()).toEqual([...inA, ...inB, later].map(hex).sort());
    expect(new Set(all).size).toBe(all.length);
  });

  it('keeps dating a serial revoked before its task closed by that first revocation, after the certificate expired', async () => {
    const task = (await a.openTask({ ...WIDE_TASK, ttl: '30m' })).body.task_id;
    const serial = await issue(task);
    (b.clock as ManualClock).advance(1000);
    expect((await revokeSerial(serial)).status).toBe(200);
    const first = Date.parse((await certStatus(serial)).revoked_at);
    (b.clock as ManualClock).advance(2000);
    expect((await a.close(task)).status).toBe(200);
    expect((await crlDates()).get(hex(serial))).toBe(Math.floor(first / 1000) * 1000);
    // past the certificate's notAfter (5 min), before its task's deadline: the closed task still lists it
    (b.clock as ManualClock).advance(6 * 60_000);
    const dates = await crlDates();
    expect(dates.get(hex(serial))).toBe(Math.floor(first / 1000) * 1000);
    expect(Date.parse((await certStatus(serial)).revoked_at)).toBe(first);
  });

  it('never answers If-Modified-Since 304 for a CRL built in the same second as the one the client holds', async () => {
    const get = (headers: Record<string, string> = {}) => fetch(`${b.url}/v1/ca/crl`, { headers });
    const task = (await a.openTask(WIDE_TASK)).body.task_id;
    const [s1, s2] = [await issue(task), await issue(task)];
    (b.clock as ManualClock).advance(1000);
    expect((await revokeSerial(s1)).status).toBe(200);
    const held = await get();
    const modified = held.headers.get('last-modified')!;
    // nothing else in that second yet (on a shared store, known once its build is stored: sent whole till then)
    await vi.waitFor(async () => expect((await get({ 'if-modified-since': modified })).status).toBe(304), { timeout: 5000 });
    expect((await revokeSerial(s2)).status).toBe(200); // the same second: a new CRL, the same Last-Modified
    const next = await get({ 'if-modified-since': modified });
    expect(next.headers.get('last-modified')).toBe(modified);
    expect(next.status).toBe(200);
    expect(await listedIn(Buffer.from(await next.arrayBuffer()))).toEqual(expect.arrayContaining([hex(s1), hex(s2)]));
    // its ETag tells the copies apart, whatever the second
    expect((await get({ 'if-none-match': next.headers.get('etag')! })).status).toBe(304);
    expect((await get({ 'if-none-match': held.headers.get('etag')! })).status).toBe(200);
  });

  it('answers a conditional fetch 304 while the client holds the current CRL (ETag, Last-Modified), 200 once it changed', async () => {
    const get = (headers: Record<string, string> = {}) => fetch(`${b.url}/v1/ca/crl`, { headers });
    // a CRL of its own second (one built in the same second as the one before is never 304 to a date)
    const own = await issue((await a.openTask(WIDE_TASK)).body.task_id);
    (b.clock as ManualClock).advance(1000);
    expect((await revokeSerial(own)).status).toBe(200);
    const first = await get();
    // on a shared store, known once its build is stored
    await vi.waitFor(async () => expect((await get({ 'if-modified-since': first.headers.get('last-modified')! })).status).toBe(304), { timeout: 5000 });
    const body = Buffer.from(await first.arrayBuffer());
    const etag = first.headers.get('etag')!;
    const modified = first.headers.get('last-modified')!;
    expect(etag).toMatch(/^"[A-Za-z0-9_-]{22}"$/);
    expect(Date.parse(modified)).toBeGreaterThan(0);
    // the CRL's own thisUpdate, to the second
    const r = spawnSync('openssl', ['crl', '-inform', 'DER', '-noout', '-lastupdate'], { input: body, encoding: 'utf8' });
    expect(Date.parse(r.stdout.replace('lastUpdate=', '').trim())).toBe(Date.parse(modified));
    // the date in the two obsolete HTTP-date forms a recipient must also accept (RFC 9110 §5.6.7)
    const d = new Date(Date.parse(modified));
    const [wd, dd, mon, yyyy, hms] = modified.replace(',', '').split(' ');
    const long = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'][d.getUTCDay()];
    const rfc850 = `${long}, ${dd}-${mon}-${yyyy!.slice(2)} ${hms} GMT`;
    const asctime = `${wd} ${mon} ${String(d.getUTCDate()).padStart(2, ' ')} ${hms} ${yyyy}`;
    const revalidations: Record<string, string>[] = [
      { 'if-none-match': etag },
      { 'if-none-match': `"x", W/${etag}` },
      { 'if-none-match': '*' },
      { 'if-modified-since': modified },
      { 'if-modified-since': rfc850 },
      { 'if-modified-since': asctime },
    ];
    for (const h of revalidations) {
      const nm = await get(h);
      expect(nm.status, JSON.stringify(h)).toBe(304);
      expect((await nm.arrayBuffer()).byteLength).toBe(0);
      expect(nm.headers.get('etag')).toBe(etag);
    }
    // another tag, an earlier date, or a date that is not one: the CRL itself
    const earlier = new Date(Date.parse(modified) - 1000).toUTCString();
    // a date ahead of the server's clock, or in a form HTTP does not use, is ignored (RFC 9110 §13.1.3)
    const future = new Date((b.clock as ManualClock).now() + 365 * 86_400_000).toUTCString();
    const misses: Record<string, string>[] = [
      { 'if-none-match': '"other"' },
      { 'if-modified-since': earlier },
      { 'if-modified-since': 'yesterday' },
      { 'if-none-match': '"other"', 'if-modified-since': modified },
      { 'if-modified-since': future },
      { 'if-modified-since': new Date(Date.parse(modified) + 1000).toISOString() },
      { 'if-modified-since': `${modified}, ${modified}` },
    ];
    for (const h of misses) {
      const full = await get(h);
      expect(full.status, JSON.stringify(h)).toBe(200);
      expect(Buffer.from(await full.arrayBuffer()).equals(body)).toBe(true);
    }
    // a revocation makes a new CRL: the old tag no longer matches
    const task = (await a.openTask(WIDE_TASK)).body.task_id;
    const serial = await issue(task);
    (b.clock as ManualClock).advance(1000); // a later second: Last-Modified moves too
    expect((await revokeSerial(serial)).status).toBe(200);
    const changed = await get({ 'if-none-match': etag });
    expect(changed.status).toBe(200);
    expect(changed.headers.get('etag')).not.toBe(etag);
    expect((await get({ 'if-modified-since': modified })).status).toBe(200);
  });

  it('rebuilds in the background after a close this process made: the next fetch serves that build', async () => {
    const task = (await a.openTask(WIDE_TASK)).body.task_id;
    const serials = [await issue(task), await issue(task)];
    await listed(); // built before the close
    // past the background rebuild's rate limit (250 ms) since an earlier test's revocation: the close's
    // rebuild starts at once, and no deferred one lands in the middle of this test
    await new Promise((r) => setTimeout(r, 400));
    const st = b.running.broker.store;
    const reads = vi.spyOn(st, 'taskSerialSlots');
    const builds = vi.spyOn(st, 'crlScopes');
    try {
      expect((await a.close(task)).status).toBe(200);
      // the close's own process reads the closed task's serials without anyone fetching
      await vi.waitFor(() => expect(reads.mock.calls.some(([t]) => t === task)).toBe(true), { timeout: 5000 });
      await vi.waitFor(() => expect(builds).toHaveBeenCalledTimes(3)); // the background build's scope reads, done
      const listedNow = await listed();
      for (const s of serials) expect(listedNow).toContain(hex(s));
      expect(builds).toHaveBeenCalledTimes(3); // the fetch served the background build: no second one
    } finally {
      reads.mockRestore();
      builds.mockRestore();
    }
  });

  it("every replica has the CRL after another's close, without a fetch: built once, by the closing process, and shared", async () => {
    await onReplicas(async (one, two) => {
      const task = (await api(one).openTask(WIDE_TASK)).body.task_id;
      const serial = await issue(task, one);
      await fetch(`${two.url}/v1/ca/crl`).then((x) => x.arrayBuffer()); // the replica's CRL, built before the close
      const storeOne = one.running.broker.store as Required<Store>;
      const storeTwo = two.running.broker.store as Required<Store>;
      const builtByOne = vi.spyOn(storeOne, 'putCrl');
      const taken = vi.spyOn(storeTwo, 'getOrClaimCrl');
      // a build reads the closed task's serials; taking the shared CRL reads only the scopes (sent
      // along with the question whether a build is needed, crl-service.ts obtain)
      const builtByTwo = vi.spyOn(storeTwo, 'taskSerialSlots');
      try {
        expect((await api(one).close(task)).status).toBe(200); // closed through the other broker
        // the closing process builds and shares it; the replica, told by the feed, takes that build,
        // with nobody fetching from either
        await vi.waitFor(() => expect(builtByOne).toHaveBeenCalled(), { timeout: 5000 });
        await vi.waitFor(async () => {
          const answers = await Promise.all(taken.mock.results.map((r) => r.value as ReturnType<Store['getOrClaimCrl'] & object>));
          expect(answers.some((a) => 'der' in a)).toBe(true); // the stored CRL, not a claim
        }, { timeout: 5000 });
        const bundleTwo = join(dir, `bundle-replica-${store}.pem`);
        writeFileSync(bundleTwo, (await http(`${two.url}/v1/ca/bundle`)).text);
        expect(await listed(two, bundleTwo)).toContain(hex(serial));
        expect(builtByTwo).not.toHaveBeenCalled(); // the replica never built it
        // and both serve the very same CRL
        const [a, b2] = await Promise.all([one, two].map((x) => fetch(`${x.url}/v1/ca/crl`).then(async (r) => Buffer.from(await r.arrayBuffer()))));
        expect(a!.equals(b2!)).toBe(true);
      } finally {
        builtByOne.mockRestore();
        taken.mockRestore();
        builtByTwo.mockRestore();
      }
    });
  });

  it("a fetch that races another process's build builds the same CRL: one number and thisUpdate, whichever process answers", async () => {
    await onReplicas(async (one, two) => {
      const crlOf = async (x: TestBroker) => Buffer.from(await (await fetch(`${x.url}/v1/ca/crl`)).arrayBuffer());
      const numberAndDate = (der: Buffer) => execFileSync('openssl', ['crl', '-inform', 'DER', '-noout', '-crlnumber', '-lastupdate'], { input: der, encoding: 'utf8' });
      const task = (await api(one).openTask(WIDE_TASK)).body.task_id;
      await issue(task, one);
      await crlOf(two);
      const storeTwo = two.running.broker.store as Required<Store>;
      const real = storeTwo.getOrClaimCrl.bind(storeTwo);
      let claimAt = 0;
      // the replica's next build finds the closing process's claim on it, as if it were building right then
      const claimed = vi.spyOn(storeTwo, 'getOrClaimCrl').mockImplementationOnce(async (...args) => {
        const got = await real(...args);
        if ('der' in got) claimAt = got.builtAt;
        return 'der' in got ? { claim: 'wait' as const, at: got.builtAt, previousAt: got.previousAt ?? 0 } : got;
      });
      try {
        expect((await api(one).close(task)).status).toBe(200); // the closing process builds and shares
        const fromOne = await crlOf(one);
        await vi.waitFor(async () => expect(numberAndDate(await crlOf(one))).toBe(numberAndDate(fromOne)), { timeout: 5000 });
        const raced = await crlOf(two); // built by the replica itself, as of the claim
        expect(claimed).toHaveBeenCalled();
        expect(claimAt).toBeGreaterThan(0);
        expect(raced.equals(fromOne)).toBe(false); // its own build (another signature)...
        expect(numberAndDate(raced)).toBe(numberAndDate(fromOne)); // ...of the same CRL: number, thisUpdate
        expect(await listedIn(raced)).toEqual(await listedIn(fromOne));
        expect(numberAndDate(await crlOf(two))).toBe(numberAndDate(fromOne));
      } finally {
        claimed.mockRestore();
      }
    });
  });

  it('a CRL built between a lock (or principal revocation) adding its scope and writing its state is never served for it', async () => {
    await onReplicas(async (one, two) => {
      try {
        const caFile = join(dir, `bundle-race-${store}.pem`);
        writeFileSync(caFile, (await http(`${one.url}/v1/ca/bundle`)).text);
        const principal = `user:crl-race-${store}@example.com`;
        const forLock = (await api(one).openTask(WIDE_TASK)).body.task_id;
        const forPrincipal = (await api(one).openTask({ ...WIDE_TASK, on_behalf_of: principal })).body.task_id;
        const locked = [await issue(forLock, one), await issue(forLock, one)];
        const ofPrincipal = [await issue(forPrincipal, one)];
        await listed(two, caFile);
        // the replica builds (and shares) a CRL in the window: the scope is added, the state not yet written
        const storeOne = one.running.broker.store;
        const lock = storeOne.lockIdentity.bind(storeOne);
        vi.spyOn(storeOne, 'lockIdentity').mockImplementationOnce(async (...args) => {
          await listed(two, caFile);
          return lock(...args);
        });
        const revoke = storeOne.revokePrincipal.bind(storeOne);
        vi.spyOn(storeOne, 'revokePrincipal').mockImplementationOnce(async (...args) => {
          await listed(two, caFile);
          return revoke(...args);
        });
        expect((await api(one).lock(id('agent/b'))).status).toBe(200);
        for (const x of [one, two]) expect(await listed(x, caFile)).toEqual(expect.arrayContaining(locked.map(hex)));
        expect((await api(one).lock(id('agent/b'), 'DELETE')).status).toBe(200);
        expect((await api(one).revokePrincipal(principal)).status).toBe(200);
        for (const x of [one, two]) expect(await listed(x, caFile)).toEqual(expect.arrayContaining(ofPrincipal.map(hex)));
      } finally {
        vi.restoreAllMocks();
      }
    });
  });

  it('brokers with different CAs on one store each serve their own CA\'s CRL (the shared build is per CA)', async () => {
    if (store === 'memory') return; // brokers share a store only through Redis
    const prefix = uniquePrefix();
    const one = await startTestBroker({ store, prefix, keysDir: mkdtempSync(join(tmpdir(), 'mayfly-keys-')) });
    const two = await startTestBroker({ store, prefix, keysDir: mkdtempSync(join(tmpdir(), 'mayfly-keys-')) });
    try {
      const bundles = await Promise.all([one, two].map(async (x, i) => {
        const f = join(dir, `bundle-ca${i}-${store}.pem`);
        writeFileSync(f, (await http(`${x.url}/v1/ca/bundle`)).text);
        return f;
      }));
      expect(ossl('x509', '-in', bundles[0]!, '-noout', '-fingerprint')).not.toBe(ossl('x509', '-in', bundles[1]!, '-noout', '-fingerprint'));
      const task = (await api(one).openTask(WIDE_TASK)).body.task_id;
      const serial = await issue(task, one);
      expect((await api(one).close(task)).status).toBe(200);
      // each CRL verifies with its own CA (openssl crl -CAfile fails otherwise) and lists the closed task's certificate
      expect(await listed(one, bundles[0])).toContain(hex(serial));
      expect(await listed(two, bundles[1])).toContain(hex(serial));
    } finally {
      await closeAll(two, one);
    }
  });

  it('lists each serial once when a lock covers more certificates than it checks one by one against the closed tasks', async () => {
    const taskA = (await a.openTask(WIDE_TASK)).body.task_id;
    const taskB = (await a.openTask(WIDE_TASK)).body.task_id;
    const inA: string[] = [];
    for (let i = 0; i < 70; i++) inA.push(await issue(taskA));
    const inB: string[] = [];
    for (let i = 0; i < 10; i++) inB.push(await issue(taskB));
    expect((await a.close(taskA)).status).toBe(200);
    for (const s of inB.slice(0, 3)) expect((await revokeSerial(s)).status).toBe(200);
    // the lock covers all 80 (more than the 64 lookups made before a set of the tasks' serials is built)
    await a.lock(id('agent/b'));
    try {
      const all = await listed();
      expect(new Set(all).size).toBe(all.length);
      for (const s of [...inA, ...inB]) expect(all).toContain(hex(s));
    } finally {
      await a.lock(id('agent/b'), 'DELETE');
      (b.clock as ManualClock).advance(1000); // past the unlock's own second, for whatever runs next
    }
  });

  it('lists what the status calls revoked when a certificate was recorded after the instant of a lock or principal revocation, before it landed', async () => {
    const clock = b.clock as ManualClock;
    // a lock whose handler read the clock 600 ms before a certificate was recorded, and landed after it
    const second = Math.floor(clock.now() / 1000) * 1000 + 5000;
    clock.set(second + 700);
    const task = (await a.openTask(WIDE_TASK)).body.task_id;
    const raced = await issue(task);
    clock.set(second + 100);
    expect((await a.lock(id('agent/b'))).status).toBe(200);
    clock.set(second + 800);
    try {
      expect((await certStatus(raced)).status).toBe('revoked'); // locked: all its certificates
      expect(await listed()).toContain(hex(raced));
    } finally {
      expect((await a.lock(id('agent/b'), 'DELETE')).status).toBe(200);
    }
    // unlocked: still revoked (issued in the cutoff's own second), and still listed
    expect((await certStatus(raced)).status).toBe('revoked');
    expect(await listed()).toContain(hex(raced));

    // a principal revocation whose instant falls between its task's opening and a certificate's record
    clock.set(second + 3000);
    const principal = 'user:raced@example.com';
    const forP = (await a.openTask({ ...WIDE_TASK, on_behalf_of: principal })).body.task_id;
    clock.set(second + 6000);
    const late = await issue(forP);
    clock.set(second + 4000);
    expect((await a.revokePrincipal(principal)).status).toBe(200);
    clock.set(second + 6100);
    expect((await certStatus(late)).status).toBe('revoked'); // its task was opened before the cutoff
    expect(await listed()).toContain(hex(late));
    // a task opened for the principal after its revocation is not covered
    const after = (await a.openTask({ ...WIDE_TASK, on_behalf_of: principal })).body.task_id;
    const fresh = await issue(after);
    expect((await certStatus(fresh)).status).toBe('good');
    expect(await listed()).not.toContain(hex(fresh));
    clock.set(second + 8000);
  });

  it("a second lock of the identity keeps the first one's revocation date for what the first covered (status and CRL agree)", async () => {
    const clock = b.clock as ManualClock;
    const base = Math.floor(clock.now() / 1000) * 1000 + 20_000;
    const revokedAt = async (serial: string) => (await http(`${b.url}/v1/certificates/${serial}`)).body.revoked_at as string;
    clock.set(base);
    const task = (await a.openTask(WIDE_TASK)).body.task_id;
    const first = await issue(task);
    clock.set(base + 2000);
    expect((await a.lock(id('agent/b'))).status).toBe(200); // the first lock: covers `first`
    clock.set(base + 4000);
    expect((await a.lock(id('agent/b'), 'DELETE')).status).toBe(200);
    clock.set(base + 6000);
    const second = await issue(task);
    clock.set(base + 8000);
    expect((await a.lock(id('agent/b'))).status).toBe(200); // the second: covers `second` (and `first` again)
    try {
      expect(await revokedAt(first)).toBe(new Date(base + 2000).toISOString());
      expect(await revokedAt(second)).toBe(new Date(base + 8000).toISOString());
      const dates = await crlDates();
      expect(dates.get(hex(first))).toBe(base + 2000);
      expect(dates.get(hex(second))).toBe(base + 8000);
    } finally {
      expect((await a.lock(id('agent/b'), 'DELETE')).status).toBe(200);
      clock.set(base + 10_000);
    }
  });

  it('a certificate covered by several revocations is dated by the first, whatever came after (status, the revoke answer, and CRL agree)', async () => {
    const clock = b.clock as ManualClock;
    const base = Math.floor(clock.now() / 1000) * 1000 + 30_000;
    const at = (ms: number) => new Date(ms).toISOString();
    clock.set(base);
    const t1 = (await a.openTask(WIDE_TASK)).body.task_id;
    const t2 = (await a.openTask(WIDE_TASK)).body.task_id;
    const t3 = (await a.openTask(WIDE_TASK)).body.task_id;
    const lockedFirst = await issue(t1);
    const serialFirst = await issue(t2);
    const closedFirst = await issue(t3);
    clock.set(base + 1000);
    expect((await revokeSerial(serialFirst)).status).toBe(200); // then its task closes
    expect((await a.close(t3)).status).toBe(200); // then the serial is revoked
    clock.set(base + 2000);
    expect((await a.lock(id('agent/b'))).status).toBe(200); // then t1 closes
    clock.set(base + 3000);
    expect((await a.close(t1)).status).toBe(200);
    expect((await a.close(t2)).status).toBe(200);
    const late = await revokeSerial(closedFirst);
    expect(late.body).toMatchObject({ status: 'revoked', revoked_at: at(base + 1000) }); // the close came first
    try {
      expect(await certStatus(serialFirst)).toMatchObject({ status: 'revoked', reason: 'certificate_revoked', revoked_at: at(base + 1000) });
      expect(await certStatus(closedFirst)).toMatchObject({ status: 'revoked', reason: 'task_closed', revoked_at: at(base + 1000) });
      expect(await certStatus(lockedFirst)).toMatchObject({ status: 'revoked', reason: 'identity_locked', revoked_at: at(base + 2000) });
      const dates = await crlDates();
      expect(dates.get(hex(serialFirst))).toBe(base + 1000);
      expect(dates.get(hex(closedFirst))).toBe(base + 1000);
      expect(dates.get(hex(lockedFirst))).toBe(base + 2000);
      const all = await listed();
      expect(new Set(all).size).toBe(all.length); // each serial once
    } finally {
      expect((await a.lock(id('agent/b'), 'DELETE')).status).toBe(200);
      clock.set(base + 5000);
    }
  });

  it('revoking a principal again dates only the tasks opened since by the new revocation', async () => {
    const clock = b.clock as ManualClock;
    const base = Math.floor(clock.now() / 1000) * 1000 + 40_000;
    const principal = 'user:twice@example.com';
    clock.set(base);
    const early = await issue((await a.openTask({ ...WIDE_TASK, on_behalf_of: principal })).body.task_id);
    clock.set(base + 1000);
    expect((await a.revokePrincipal(principal)).status).toBe(200);
    clock.set(base + 2000);
    const later = await issue((await a.openTask({ ...WIDE_TASK, on_behalf_of: principal })).body.task_id);
    clock.set(base + 3000);
    expect((await a.revokePrincipal(principal)).status).toBe(200);
    clock.set(base + 4000);
    expect(await certStatus(early)).toMatchObject({ status: 'revoked', reason: 'task_principal_revoked', revoked_at: new Date(base + 1000).toISOString() });
    expect(await certStatus(later)).toMatchObject({ status: 'revoked', reason: 'task_principal_revoked', revoked_at: new Date(base + 3000).toISOString() });
    const dates = await crlDates();
    expect(dates.get(hex(early))).toBe(base + 1000);
    expect(dates.get(hex(later))).toBe(base + 3000);
  });
});
