/**
 * Fail closed when the revocation feed is cut: the verifier keeps answering from its mirror for
 * `maxStalenessMs`, then refuses with `stale` (or asks introspection when allowed), and recovers by
 * itself, replaying what it missed, when the broker is reachable again.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createVerifier, type Verifier } from '../../src/sdk/verifier/index.js';
import { api, API, CLIENT, startTestBroker, type TestBroker } from '../helpers/broker.js';
import { tcpProxy, type Proxy } from '../helpers/tcp-proxy.js';
import { eventually, manual, mint } from './support.js';

describe.each(['stream', 'poll'] as const)('a cut %s feed', (feed) => {
  let b: TestBroker;
  let proxy: Proxy;
  let feedOnlyProxy: (input: string | URL | Request, init?: RequestInit) => Promise<Response>;
  beforeAll(async () => {
    b = await startTestBroker({ extra: { feed: { heartbeat: '200ms' } } });
    proxy = await tcpProxy(b.url);
    const via = proxy.url.replace(/\/$/, '');
    // only the feed goes through the cuttable proxy; JWKS and introspection reach the broker directly
    feedOnlyProxy = (input, init) => {
      const u = String(input);
      return fetch(u.includes('/v1/revocations') ? u.replace(b.url, via) : u, init);
    };
  });
  afterAll(async () => {
    await proxy.close();
    await b.close();
  });

  const make = (extra: Partial<Parameters<typeof createVerifier>[0]> = {}): Verifier =>
    createVerifier({
      issuer: b.url,
      clientId: CLIENT.id,
      clientSecret: CLIENT.secret,
      feed,
      pollIntervalMs: 50,
      maxStalenessMs: 30_000,
      clock: b.clock,
      fetch: feedOnlyProxy,
      ...extra,
    });

  it('goes stale after maxStalenessMs without the feed, and recovers with what it missed', async () => {
    const v = make();
    await v.start({ timeoutMs: 5000 });
    const live = await mint(b);
    const doomed = await mint(b);
    expect((await v.verify(doomed.token, { audience: API })).ok).toBe(true);

    proxy.cut();
    await eventually(() => v.status(), (s) => s.feed.mode !== 'none' && s.feed.state === 'retrying');
    // within the staleness bound the mirror still answers
    expect((await v.verify(live.token, { audience: API })).ok).toBe(true);
    await api(b).close(doomed.taskId); // happens while the verifier cannot hear it
    manual(b).advance(30_001);
    expect(await v.verify(live.token, { audience: API })).toMatchObject({ ok: false, code: 'stale' });
    expect(await v.verify(doomed.token, { audience: API })).toMatchObject({ ok: false, code: 'stale' });
    expect(v.status().fresh).toBe(false);
    expect(v.checkCertificate('x', { trustBundle: [] })).toMatchObject({ ok: false, code: 'stale' });

    proxy.restore();
    expect(await eventually(() => v.verify(live.token, { audience: API }), (r) => r.ok, 15_000)).toMatchObject({ ok: true });
    expect(await v.verify(doomed.token, { audience: API })).toMatchObject({ ok: false, code: 'revoked', reason: 'task_closed' });
    v.close();
  });

  it('with introspectionFallback, a stale verifier asks the broker instead of refusing', async () => {
    const v = make({ introspectionFallback: true });
    await v.start({ timeoutMs: 5000 });
    const live = await mint(b);
    const doomed = await mint(b);
    proxy.cut();
    await eventually(() => v.status(), (s) => s.feed.mode !== 'none' && s.feed.state === 'retrying');
    manual(b).advance(30_001);
    await api(b).close(doomed.taskId);
    expect(v.status().fresh).toBe(false);
    expect((await v.verify(live.token, { audience: API })).ok).toBe(true);
    expect(await v.verify(doomed.token, { audience: API })).toMatchObject({ ok: false, code: 'revoked', reason: 'introspection_inactive' });
    proxy.restore();
    await eventually(() => v.status().fresh, (f) => f, 15_000);
    expect(await v.verify(doomed.token, { audience: API })).toMatchObject({ ok: false, code: 'revoked', reason: 'task_closed' });
    v.close();
  });
});
