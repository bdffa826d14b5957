/**
 * Attestation sources: a file re-read on every use (Kubernetes rotates projected tokens in place),
 * GitHub Actions OIDC (against a local stand-in for the Actions token service: never the real one),
 * and the broker's dev attestor (a real broker in dev mode), used end to end by the client.
 */
import { createServer, type Server } from 'node:http';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { createClient, devAttestor, fileToken, githubActions } from '../../src/sdk/client/index.js';
import { api, startTestBroker, type TestBroker } from '../helpers/broker.js';

const jwt = (claims: Record<string, unknown>) => `e30.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.sig`;

describe('attestation sources', () => {
  let server: Server | undefined;
  let b: TestBroker | undefined;
  afterEach(() => new Promise<void>((r) => (server ? server.close(() => r()) : r())));
  afterAll(() => b?.close());

  it('fileToken re-reads the file on every use', async () => {
    const f = join(mkdtempSync(join(tmpdir(), 'mayfly-att-')), 'token');
    writeFileSync(f, 'first\n');
    const src = fileToken(f);
    expect(await src.token()).toBe('first');
    writeFileSync(f, 'rotated');
    expect(await src.token()).toBe('rotated');
    writeFileSync(f, '  ');
    await expect(src.token()).rejects.toThrow(/empty/);
  });

  it('githubActions asks the Actions token service for the audience, and reuses the token until near its exp', async () => {
    const asked: { auth?: string; audience: string | null }[] = [];
    server = createServer((req, res) => {
      const u = new URL(req.url!, 'http://x');
      asked.push({ auth: req.headers.authorization, audience: u.searchParams.get('audience') });
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ value: jwt({ sub: 'repo:org/app', exp: Math.floor(Date.now() / 1000) + 300, n: asked.length }) }));
    });
    await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(server.address() as { port: number }).port}/token?api-version=2.0`;
    const src = githubActions({ audience: 'mayfly', env: { ACTIONS_ID_TOKEN_REQUEST_URL: url, ACTIONS_ID_TOKEN_REQUEST_TOKEN: 'runtime-token' } });
    const [t1, t2] = await Promise.all([src.token(), src.token()]);
    expect(t1).toBe(t2);
    expect(await src.token()).toBe(t1);
    expect(asked).toEqual([{ auth: 'bearer runtime-token', audience: 'mayfly' }]);
    await expect(githubActions({ audience: 'mayfly', env: {} }).token()).rejects.toThrow(/id-token: write/);
  });

  it('devAttestor gets a token from a dev-mode broker, and the client exchanges it', async () => {
    b = await startTestBroker({
      extra: {
        dev: true,
        registrations: [
          { spiffe_id: 'spiffe://test.local/agent/dev', attestor: 'dev', match: { sub: 'coder' }, owner: 'o@example.com', roles: ['agent'], scopes: ['read'], tools: [], audiences: ['https://api.test'] },
        ],
      },
    });
    const task = (await api(b).openTask({ agents: ['spiffe://test.local/agent/dev'], scopes: ['read'], audiences: ['https://api.test'] }, 'op-token-0123456789abcdef')).body.task_id;
    const c = createClient({ brokerUrl: b.url, attestation: devAttestor(b.url, 'coder') });
    const t = await c.token({ task });
    expect((await api(b).introspect(t.token)).body).toMatchObject({ active: true, client_id: 'spiffe://test.local/agent/dev' });
  });
});
