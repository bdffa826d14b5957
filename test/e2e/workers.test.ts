/**
 * `workers: 2`: the real CLI (`mayfly serve`) as a primary with two broker processes on one port and a
 * real Redis. Requests on separate connections land on different workers (the primary hands each to the
 * worker holding the fewest), so a token minted by one is introspected by another, and a close through
 * one is seen by all. A killed worker is replaced; SIGTERM stops everything with exit code 0.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { createServer as createNetServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ATTEST_ISS, AUD, CLIENT, JWT_TYPE, TOKEN_EXCHANGE, WIDE_TASK, baseDoc, freePort, newSigner, type Signer } from '../helpers/broker.js';
import { redisUrl, uniquePrefix } from '../helpers/redis.js';
import { corpPki } from '../helpers/mtls.js';

interface Answer {
  status: number;
  body: any; // eslint-disable-line @typescript-eslint/no-explicit-any
}

/** One request on a connection of its own (no keep-alive pool), so connections spread over workers. */
function once(url: string, method: string, headers: Record<string, string>, body?: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, headers: { ...headers, connection: 'close' }, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text ? JSON.parse(text) : null }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

const form = (p: Record<string, string>) => new URLSearchParams(p).toString();
const FORM = 'application/x-www-form-urlencoded';
const basicAuth = `Basic ${Buffer.from(`${CLIENT.id}:${CLIENT.secret}`).toString('base64')}`;

/** A GET on one of `agent`'s connections (kept open after the answer). */
function get(url: string, agent: Agent): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(url, { agent }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end();
  });
}

/** How many established TCP connections on local `port` a process holds (its sockets' inodes, looked up in /proc/net/tcp). */
function connectionsOn(pid: number, port: number): number {
  const dir = `/proc/${pid}/fd`;
  const inodes = new Set<string>();
  for (const fd of readdirSync(dir)) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(join(dir, fd)));
      if (m) inodes.add(m[1]!);
    } catch {
      // closed meanwhile
    }
  }
  let n = 0;
  for (const table of ['tcp', 'tcp6']) {
    for (const line of readFileSync(`/proc/${pid}/net/${table}`, 'utf8').split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      // local address, state (01: established), inode
      if (f.length > 9 && parseInt(f[1]!.split(':')[1]!, 16) === port && f[3] === '01' && inodes.has(f[9]!)) n++;
    }
  }
  return n;
}

/** The broker workers among a process's children (tsx's loader may have a helper child of its own). */
function childrenOf(pid: number): number[] {
  try {
    const kids = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
    return kids.filter((k) => {
      try {
        return readFileSync(`/proc/${k}/cmdline`, 'utf8').includes('cli/main.ts');
      } catch {
        return false; // already gone
      }
    });
  } catch {
    return [];
  }
}

async function until<T>(what: string, f: () => T | undefined | false, ms = 20_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = f();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** `mayfly serve` on `doc` (written into `dir`), its output piped. */
function serve(dir: string, doc: object): { child: ChildProcess; exit: Promise<number | null> } {
  const file = join(dir, 'mayfly.yaml');
  writeFileSync(file, JSON.stringify(doc)); // JSON is YAML
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'serve', '--config', file], { stdio: ['ignore', 'pipe', 'pipe'] });
  return { child, exit: new Promise((r) => child.once('exit', (code) => r(code))) };
}

describe.skipIf(process.platform !== 'linux')('workers: 2 (node:cluster on Redis)', () => {
  let dir: string;
  let url: string;
  let child: ChildProcess;
  let out = '';
  let signer: Signer;
  let exit: Promise<number | null>;

  const attest = (sub: string) => {
    const now = Math.floor(Date.now() / 1000);
    return new SignJWT({ repo: 'org/app' })
      .setProtectedHeader({ alg: 'ES256', kid: signer.kid, typ: 'JWT' })
      .setIssuer(ATTEST_ISS)
      .setSubject(sub)
      .setAudience(AUD)
      .setIssuedAt(now)
      .setExpirationTime(now + 600)
      .sign(signer.privateKey);
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'mayfly-workers-'));
    const port = await freePort();
    url = `http://127.0.0.1:${port}`;
    signer = await newSigner('main-1');
    const doc = baseDoc(port, { main: signer, other: await newSigner('other-1') }, {
      workers: 2,
      store: { redis_url: redisUrl(), prefix: uniquePrefix() },
      keys: { dir: join(dir, 'keys') },
      log: { level: 'info' },
    });
    const cli = serve(dir, doc);
    child = cli.child;
    exit = cli.exit;
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    await until('the workers to listen', () => out.includes('mayfly workers listening'), 60_000);
  }, 90_000);

  afterAll(async () => {
    if (child.exitCode === null) child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  it('runs two worker processes under one primary', () => {
    expect(childrenOf(child.pid!)).toHaveLength(2);
  });

  it('tokens minted by one worker are active at the others, and a close through any revokes them everywhere', async () => {
    const orch = await attest('orch');
    const agent = await attest('agent-a');
    const open = await once(`${url}/v1/tasks`, 'POST', { authorization: `Bearer ${orch}`, 'content-type': 'application/json' }, JSON.stringify(WIDE_TASK));
    expect(open.status).toBe(201);
    const taskId = open.body.task_id as string;
    const tokens: string[] = [];
    for (let i = 0; i < 6; i++) {
      const r = await once(`${url}/oauth/token`, 'POST', { 'content-type': FORM }, form({ grant_type: TOKEN_EXCHANGE, subject_token: agent, subject_token_type: JWT_TYPE, task_id: taskId, scope: 'read' }));
      expect(r.status).toBe(200);
      tokens.push(r.body.access_token);
    }
    // shared keys: the tokens of both workers name a kid both publish
    expect(new Set(tokens.map((t) => JSON.parse(Buffer.from(t.split('.')[0]!, 'base64url').toString()).kid)).size).toBe(1);
    for (const t of tokens) {
      const r = await once(`${url}/oauth/introspect`, 'POST', { 'content-type': FORM, authorization: basicAuth }, form({ token: t }));
      expect(r.body.active).toBe(true);
    }
    const close = await once(`${url}/v1/tasks/${taskId}/close`, 'POST', { authorization: `Bearer ${orch}` });
    expect(close.status).toBe(200);
    expect(close.body.revoked).toBe(6);
    for (const t of tokens) {
      const r = await once(`${url}/oauth/introspect`, 'POST', { 'content-type': FORM, authorization: basicAuth }, form({ token: t }));
      expect(r.body).toEqual({ active: false });
    }
  });

  it('replaces a worker that dies, and keeps serving meanwhile; every worker then publishes the keys the replacement read', async () => {
    // a key rotated without SIGHUP: only a worker that reads the directory anew knows it
    const rotated = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'pem', type: 'pkcs8' });
    writeFileSync(join(dir, 'keys', 'zz-rotated.pem'), rotated, { mode: 0o600 });
    const before = childrenOf(child.pid!);
    process.kill(before[0]!, 'SIGKILL');
    const after = await until('a replacement worker', () => {
      const now = childrenOf(child.pid!);
      return now.length === 2 && !now.includes(before[0]!) ? now : undefined;
    });
    expect(after).toContain(before[1]);
    await until('the replacement to listen', () => (out.match(/"msg":"mayfly listening"/g) ?? []).length >= 3);
    for (let i = 0; i < 4; i++) expect((await once(`${url}/readyz`, 'GET', {})).status).toBe(200);
    expect(out).toContain('a worker exited; replacing it');
    await until('the survivor to reload its keys', () => out.includes('signing keys reloaded'));
    const jwks = await Promise.all(Array.from({ length: 6 }, () => once(`${url}/.well-known/jwks.json`, 'GET', {})));
    const sets = new Set(jwks.map((j) => (j.body.keys as Array<{ kid: string }>).map((k) => k.kid).sort().join(',')));
    expect(sets.size).toBe(1);
    expect(jwks[0]!.body.keys).toHaveLength(2);
  });

  it('hands each connection to the worker holding the fewest: a replacement takes the new ones until both hold as many', async () => {
    const port = Number(new URL(url).port);
    const agents: Agent[] = [];
    // `n` new connections at once (an agent of their own), each kept open after its answer
    const hold = (n: number) => {
      const agent = new Agent({ keepAlive: true, maxSockets: n });
      agents.push(agent);
      return Promise.all(Array.from({ length: n }, () => get(`${url}/readyz`, agent)));
    };
    const held = (...pids: number[]) => pids.map((pid) => connectionsOn(pid, port)).join('/');
    try {
      const [a, b] = childrenOf(child.pid!) as [number, number];
      await hold(8);
      await until('8 connections held, 4 by each worker', () => held(a, b) === '4/4');
      process.kill(a, 'SIGKILL'); // its 4 connections go with it
      const c = await until('a replacement worker', () => childrenOf(child.pid!).find((p) => p !== a && p !== b));
      await until('the replacement to listen', () => (out.match(/"msg":"mayfly listening"/g) ?? []).length >= 4);
      await hold(4);
      // round-robin would give each 2 (6 against 2); fewest-first gives the replacement all 4
      await until('the 4 new connections held by the replacement', () => held(b, c) === '4/4');
    } finally {
      for (const agent of agents) agent.destroy();
    }
  }, 60_000);

  it('a worker killed while connections pour in: each one is answered or closed, none waits, the primary keeps none', async () => {
    const port = Number(new URL(url).port);
    const [a] = childrenOf(child.pid!) as [number, number];
    process.kill(a, 'SIGKILL');
    // 60 connections at once, each given 10 s: an answer, or an error (those the killed worker had taken)
    const settled = await Promise.all(
      Array.from({ length: 60 }, () =>
        new Promise<string>((resolve) => {
          const req = request(`${url}/healthz`, { headers: { connection: 'close' }, agent: false, timeout: 10_000 }, (res) => {
            res.resume();
            res.on('end', () => resolve(String(res.statusCode)));
          });
          req.on('timeout', () => (req.destroy(), resolve('hung')));
          req.on('error', () => resolve('closed'));
          req.end();
        }),
      ),
    );
    expect(settled.filter((x) => x === 'hung')).toEqual([]);
    expect(settled.filter((x) => x === '200').length).toBeGreaterThan(30);
    await until('the primary to hold no client connection', () => connectionsOn(child.pid!, port) === 0);
    await until('a replacement worker', () => childrenOf(child.pid!).length === 2 && !childrenOf(child.pid!).includes(a));
  }, 60_000);

  it('stops every worker on SIGTERM and exits 0', async () => {
    const workers = childrenOf(child.pid!);
    child.kill('SIGTERM');
    expect(await exit).toBe(0);
    for (const pid of workers) expect(() => process.kill(pid, 0)).toThrow();
  });
});

describe.skipIf(process.platform !== 'linux')('workers: 2 on a port in use', () => {
  it('exits 2 at once, saying so, before any worker starts', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mayfly-workers-busy-'));
    const taken = createNetServer();
    await new Promise<void>((r) => taken.listen(0, '127.0.0.1', () => r()));
    try {
      const port = (taken.address() as { port: number }).port;
      const doc = baseDoc(port, { main: await newSigner('main-1'), other: await newSigner('other-1') }, {
        workers: 2,
        store: { redis_url: redisUrl(), prefix: uniquePrefix() },
        keys: { dir: join(dir, 'keys') },
      });
      const { child, exit } = serve(dir, doc);
      let err = '';
      child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
      child.stdout!.resume();
      expect(await exit).toBe(2);
      expect(err).toMatch(/address already in use/);
      expect(err).not.toMatch(/worker/);
    } finally {
      taken.close();
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});

describe.skipIf(process.platform !== 'linux')('workers: 2 with listen.tls', () => {
  // the primary hands over the TCP connection; the handshake, and the client certificate, are the worker's
  const { p, build, call } = corpPki('mayfly-workers-tls-');
  let child: ChildProcess;
  let out = '';

  beforeAll(async () => {
    const port = await freePort();
    const doc = baseDoc(port, { main: await newSigner('main-1'), other: await newSigner('other-1') }, {
      workers: 2,
      store: { redis_url: redisUrl(), prefix: uniquePrefix() },
      keys: { dir: p.file('keys') },
      log: { level: 'info' },
    }) as Record<string, unknown> & { listen: object; attestors: unknown[] };
    Object.assign(doc.listen, { tls: { cert_file: p.file('server.pem'), key_file: p.file('server.key') } });
    doc.attestors.push({ name: 'corp', type: 'x509', trust_bundle_file: p.file('corp-ca.pem') });
    child = serve(p.file('.'), doc).child;
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    await until('the workers to listen', () => out.includes('mayfly workers listening'), 60_000);
  }, 90_000);

  afterAll(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });

  it('answers over HTTPS on connections handed to either worker, with and without a client certificate', async () => {
    const url = JSON.parse(out.split('\n').find((l) => l.includes('mayfly workers listening'))!).url as string;
    expect(url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    const answers = await Promise.all(Array.from({ length: 6 }, (_, i) => call(`${url}/readyz`, i % 2 ? { client: build } : {})));
    expect(answers.map((a) => a.status)).toEqual([200, 200, 200, 200, 200, 200]);
  });
});
