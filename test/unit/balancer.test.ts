/**
 * The primary's least-connections balancer (src/balancer.ts), with workers that record what they are
 * sent, and the worker's half, serving connections handed over on an HTTP server that never listens.
 * The real exchange between processes is test/e2e/workers.test.ts.
 */
import { EventEmitter } from 'node:events';
import type { Worker } from 'node:cluster';
import { createServer as createHttpServer } from 'node:http';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { Balancer, serveHandedConnections } from '../../src/balancer.js';

/** A worker that takes every socket it is sent, and can report one closed as a real worker would. */
class FakeWorker extends EventEmitter {
  readonly held: Socket[] = [];
  constructor(readonly process: { pid: number }) {
    super();
  }
  send(_m: unknown, socket: Socket, cb: (err: Error | null) => void): boolean {
    this.held.push(socket);
    cb(null);
    return true;
  }
  close(n = 1): void {
    for (let i = 0; i < n; i++) {
      this.held.shift()!.destroy();
      this.emit('message', { mayfly: 'closed' });
    }
  }
}

const fake = (pid: number) => new FakeWorker({ pid }) as FakeWorker & Worker;
/** Stand-ins for accepted connections (the balancer only passes them on, or destroys them). */
const sockets: Array<{ destroyed: boolean }> = [];
const socket = () => {
  const s = { destroyed: false, destroy: () => void (s.destroyed = true), once: () => s };
  sockets.push(s);
  return s as unknown as Socket;
};

describe('Balancer (the primary)', () => {
  it('hands a burst of connections evenly, and each next one to the worker holding the fewest', () => {
    const b = new Balancer();
    const [w1, w2] = [fake(1), fake(2)];
    b.add(w1);
    b.add(w2);
    for (let i = 0; i < 64; i++) b.hand(socket());
    expect(b.counts()).toEqual({ 1: 32, 2: 32 });
    w1.close(10);
    for (let i = 0; i < 6; i++) b.hand(socket());
    expect(b.counts()).toEqual({ 1: 28, 2: 32 });
    expect(w2.held).toHaveLength(32);
  });

  it('takes turns between workers holding as many (connections that close at once)', () => {
    const b = new Balancer();
    const ws = [fake(1), fake(2), fake(3)];
    for (const w of ws) b.add(w);
    for (let i = 0; i < 6; i++) {
      b.hand(socket());
      ws.find((w) => w.held.length > 0)!.close();
    }
    expect(ws.map((w) => w.listenerCount('message'))).toEqual([1, 1, 1]);
    expect(b.counts()).toEqual({ 1: 0, 2: 0, 3: 0 });
  });

  it('a new worker takes the new connections until it holds as many as the others', () => {
    const b = new Balancer();
    const [w1, w2, w3] = [fake(1), fake(2), fake(3)];
    b.add(w1);
    b.add(w2);
    for (let i = 0; i < 8; i++) b.hand(socket());
    b.remove(w1); // it died with its 4
    b.add(w3);
    for (let i = 0; i < 4; i++) b.hand(socket());
    expect(b.counts()).toEqual({ 2: 4, 3: 4 });
  });

  it('keeps connections waiting while no worker is ready, hands them to the first that is, and closes them on stop', () => {
    const b = new Balancer();
    const early = [socket(), socket()];
    for (const s of early) b.hand(s);
    const w = fake(1);
    b.add(w);
    expect(w.held).toEqual(early);
    b.remove(w);
    const late = socket();
    b.hand(late);
    b.stop();
    expect((late as unknown as { destroyed: boolean }).destroyed).toBe(true);
    const after = socket();
    b.hand(after);
    expect((after as unknown as { destroyed: boolean }).destroyed).toBe(true);
  });

  it('counts back a connection whose send failed (the worker is going away), and closes it', () => {
    const b = new Balancer();
    const w = new (class extends FakeWorker {
      override send(_m: unknown, _s: Socket, cb: (err: Error | null) => void): boolean {
        cb(new Error('channel closed'));
        return false;
      }
    })({ pid: 1 }) as FakeWorker & Worker;
    b.add(w);
    const s = socket();
    b.hand(s);
    expect(b.counts()).toEqual({ 1: 0 });
    expect((s as unknown as { destroyed: boolean }).destroyed).toBe(true);
  });
});

describe('serveHandedConnections (a worker)', () => {
  const open: Array<{ close(): unknown }> = [];
  afterEach(() => {
    for (const o of open.splice(0)) o.close();
  });

  /** The worker's channel to the primary: what it was told (closed connections). */
  const channel = Object.assign(new EventEmitter(), { connected: true, told: [] as unknown[], send: (m: unknown) => channel.told.push(m) });

  /** A listener standing in for the primary: accepts paused, and hands each socket over the channel. */
  async function primary(): Promise<number> {
    const l: Server = createServer({ pauseOnConnect: true }, (s) => channel.emit('message', { mayfly: 'connection' }, s));
    open.push(l);
    await new Promise<void>((r) => l.listen(0, '127.0.0.1', () => r()));
    return (l.address() as { port: number }).port;
  }

  /** What the server answers `request` on a new connection, once the connection closes or 3 s pass. */
  const exchange = (port: number, request: string) =>
    new Promise<string>((resolve) => {
      const c = connect(port, '127.0.0.1', () => c.write(request));
      let got = '';
      c.on('data', (d) => (got += d));
      c.on('close', () => resolve(got));
      c.on('error', () => undefined);
      setTimeout(() => (c.destroy(), resolve(got)), 3000).unref();
    });

  it('serves a handed connection, applies the header timeout (as a listening server would), and closes those handed after it stops', async () => {
    const server = createHttpServer({ headersTimeout: 500, requestTimeout: 1000, connectionsCheckingInterval: 100 }, (_q, r) => r.end('served'));
    open.push(server);
    const stop = serveHandedConnections(server, channel);
    const port = await primary();
    expect(await exchange(port, 'GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')).toMatch(/^HTTP\/1\.1 200 OK[\s\S]*served$/);
    // headers that never end: answered 408 by node:http's connection tracking
    expect(await exchange(port, 'GET / HTTP/1.1\r\nHost: x\r\n')).toMatch(/^HTTP\/1\.1 408 /);
    stop();
    expect(await exchange(port, 'GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')).toBe('');
    // each of the three connections, once closed, was told to the primary
    await new Promise((r) => setTimeout(r, 50));
    expect(channel.told).toEqual([{ mayfly: 'closed' }, { mayfly: 'closed' }, { mayfly: 'closed' }]);
  });
});
