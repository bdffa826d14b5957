/**
 * The revocation channels agree, whatever the order of revocations (fast-check over HTTP): after
 * random sequences of certificate issuance, serial revocations, identity locks and unlocks, principal
 * revocations, task closes and clock steps, every certificate the JSON status calls revoked is on the
 * CRL exactly once, dated (to the second) by the status's revoked_at, which is the first revocation that
 * covered it; and no certificate the status calls good is on it.
 */
import { generateKeyPairSync } from 'node:crypto';
import fc from 'fast-check';
import { AsnConvert } from '@peculiar/asn1-schema';
import { CertificateList } from '@peculiar/asn1-x509';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, bearer, http, id, OPERATOR, postJson, startTestBroker, WIDE_TASK, type TestBroker } from '../helpers/broker.js';
import { buildCsr } from '../unit/x509/helpers.js';
import type { ManualClock } from '../../src/clock.js';

type Op =
  | { kind: 'issue'; agent: 'agent-b' | 'agent-c'; task: number }
  | { kind: 'revokeSerial'; cert: number }
  | { kind: 'lock' | 'unlock'; agent: 'agent-b' | 'agent-c' }
  | { kind: 'revokePrincipal' }
  | { kind: 'close'; task: number }
  | { kind: 'tick'; ms: number };

const agent = fc.constantFrom('agent-b' as const, 'agent-c' as const);
const op: fc.Arbitrary<Op> = fc.oneof(
  { arbitrary: fc.record({ kind: fc.constant('issue' as const), agent, task: fc.nat(2) }), weight: 6 },
  fc.record({ kind: fc.constant('revokeSerial' as const), cert: fc.nat(20) }),
  fc.record({ kind: fc.constantFrom('lock' as const, 'unlock' as const), agent }),
  fc.record({ kind: fc.constant('revokePrincipal' as const) }),
  fc.record({ kind: fc.constant('close' as const), task: fc.nat(2) }),
  { arbitrary: fc.record({ kind: fc.constant('tick' as const), ms: fc.integer({ min: 100, max: 3000 }) }), weight: 2 },
);

const csrPem = (() => {
  const kp = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const b64 = buildCsr(kp.privateKey, kp.publicKey).toString('base64');
  return `-----BEGIN CERTIFICATE REQUEST-----\n${b64}\n-----END CERTIFICATE REQUEST-----\n`;
})();

const bare = (hex: string) => hex.toLowerCase().replace(/^0+/, '');

describe.each(['memory', 'redis'] as const)('revocation channels agree (%s)', (store) => {
  let b: TestBroker;
  let a: ReturnType<typeof api>;
  let seq = 0;
  beforeAll(async () => {
    b = await startTestBroker({
      store,
      edit: (doc) => {
        const regs = doc.registrations as Array<Record<string, unknown>>;
        regs.push({ ...regs.find((r) => r.spiffe_id === id('agent/b'))!, spiffe_id: id('agent/c'), match: { sub: 'agent-c' } });
      },
    });
    a = api(b);
  });
  afterAll(() => b.close());

  /** The CRL's entries: serial (bare hex) -> revocation date (ms), counting duplicates. */
  const crl = async (): Promise<{ dates: Map<string, number>; duplicates: number }> => {
    const der = Buffer.from(await (await fetch(`${b.url}/v1/ca/crl`)).arrayBuffer());
    const list = AsnConvert.parse(der, CertificateList);
    const dates = new Map<string, number>();
    let duplicates = 0;
    for (const r of list.tbsCertList.revokedCertificates ?? []) {
      const serial = bare(Buffer.from(r.userCertificate).toString('hex'));
      if (dates.has(serial)) duplicates++;
      dates.set(serial, r.revocationDate.getTime().getTime());
    }
    return { dates, duplicates };
  };

  it('after random sequences of revocations, the JSON status and the CRL say the same of every certificate', async () => {
    const clock = b.clock as ManualClock;
    await fc.assert(
      fc.asyncProperty(fc.array(op, { minLength: 3, maxLength: 18 }), async (ops) => {
        const principal = `user:p${++seq}@example.com`;
        const orch = await b.attest('orch');
        const tasks = [
          (await a.openTask({ ...WIDE_TASK, agents: [id('agent/*')], on_behalf_of: principal }, orch)).body.task_id as string,
          (await a.openTask(WIDE_TASK, orch)).body.task_id as string,
          (await a.openTask({ ...WIDE_TASK, on_behalf_of: principal }, orch)).body.task_id as string,
        ];
        const certs: string[] = [];
        try {
          for (const o of ops) {
            if (o.kind === 'issue') {
              const r = await postJson(`${b.url}/v1/certificates`, { task_id: tasks[o.task], csr: csrPem }, bearer(await b.attest(o.agent)));
              expect([201, 400, 503], r.text).toContain(r.status); // refused: task closed, identity locked, or its unlock's second
              if (r.status === 201) certs.push(r.body.serial as string);
            } else if (o.kind === 'revokeSerial') {
              if (certs.length) expect((await http(`${b.url}/v1/certificates/${certs[o.cert % certs.length]}/revoke`, { method: 'POST', headers: bearer(OPERATOR.token) })).status).toBe(200);
            } else if (o.kind === 'lock' || o.kind === 'unlock') {
              expect((await a.lock(id(`agent/${o.agent.slice(6)}`), o.kind === 'lock' ? 'POST' : 'DELETE')).status).toBe(200);
            } else if (o.kind === 'revokePrincipal') {
              expect((await a.revokePrincipal(principal)).status).toBe(200);
            } else if (o.kind === 'close') {
              expect((await a.close(tasks[o.task]!, orch)).status).toBe(200);
            } else if (o.kind === 'tick') clock.advance(o.ms);
          }
          const { dates, duplicates } = await crl();
          expect(duplicates).toBe(0);
          for (const serial of certs) {
            const st = (await http(`${b.url}/v1/certificates/${serial}`)).body as { status: string; revoked_at?: string; reason?: string };
            const listed = dates.get(bare(serial));
            if (st.status === 'revoked') {
              expect(listed, `${serial} ${st.reason} not on the CRL`).toBeDefined();
              expect(listed, `${serial} ${st.reason}`).toBe(Math.floor(Date.parse(st.revoked_at!) / 1000) * 1000);
            } else {
              expect(st.status).toBe('good');
              expect(listed, `${serial} good but on the CRL`).toBeUndefined();
            }
          }
        } finally {
          for (const ag of ['b', 'c']) await a.lock(id(`agent/${ag}`), 'DELETE');
          clock.advance(1100); // past the unlock's own second
        }
      }),
      { numRuns: 25 },
    );
  }, 120_000);
});
