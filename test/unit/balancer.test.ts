/**
 * The primary's least-connections balancer (src/balancer.ts), with workers that record what they are
 * sent, and the worker's half, serving connections handed over on an HTTP server that never listens.
 * The real exchange between processes is test/e2e/workers.test.ts.
 */
import { EventEmitter } from 'node:events';
import type { Worker } from 'node:cluster';
import { createServer as createHttpServer } from 'node:http';
import { connect, createServer, Socket, type Server } from 'node:net';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { Balancer, serveHandedConnections } from '../../src/balancer.js';

/**
 * A worker that records every socket it is sent, and says what it holds as a real worker would
 * (`receive`, `close`); `deliver: false` loses handoffs on the way (as a worker out of descriptors).
 */
class FakeWorker extends EventEmitter {
  readonly sent: Array<{ seq: number; socket: Socket }> = [];
  readonly held: Socket[] = [];
  connected = true;
  deliver = true;
  private lastSeq = 0;
  constructor(readonly process: { pid: number }) {
    super();
  }
  isConnected(): boolean {
    return this.connected;
  }
  send(m: { seq: number }, socket: Socket, _o: { keepOpen: boolean }, cb: (err: Error | null) => void): boolean {
    if (!this.connected) {
      cb(new Error('channel closed'));
      return false;
    }
    this.sent.push({ seq: m.seq, socket });
    cb(null);
    return true;
  }
  /** Takes what was sent so far (or loses it, with `deliver` off), and says what it holds. */
  receive(): void {
    for (const { seq, socket } of this.sent.splice(0)) {
      this.lastSeq = seq;
      if (this.deliver) this.held.push(socket);
    }
    this.say();
  }
  close(n = 1): void {
    for (let i = 0; i < n; i++) this.held.shift()!.destroy();
    this.say();
  }
  private say(): void {
    this.emit('message', { mayfly: 'holding', open: this.held.length, seq: this.lastSeq });
  }
}

const fake = (pid: number) => new FakeWorker({ pid }) as FakeWorker & Worker;
/** Stand-ins for accepted connections (the balancer only passes them on, or destroys them). */
const socket = () => {
  const s = { destroyed: false, destroy: () => void (s.destroyed = true), once: () => s };
  return s as unknown as Socket & { destroyed: boolean };
};

describe('Balancer (the primary)', () => {
  it('hands a burst of connections evenly, and each next one to the worker holding the fewest', () => {
    const b = new Balancer();
    const [w1, w2] = [fake(1), fake(2)];
    b.add(w1);
    b.add(w2);
    for (let i = 0; i < 64; i++) b.hand(socket());
    expect(b.counts()).toEqual({ 1: 32, 2: 32 });
    w1.receive();
    w2.receive();
    w1.close(10);
    for (let i = 0; i < 6; i++) b.hand(socket());
    expect(b.counts()).toEqual({ 1: 28, 2: 32 });
    expect(w2.sent).toHaveLength(0);
  });

  it('takes turns between workers holding as many (connections that close at once)', () => {
    const b = new Balancer();
    const ws = [fake(1), fake(2), fake(3)];
    for (const w of ws) b.add(w);
    const got: number[] = [];
    for (let i = 0; i < 6; i++) {
      b.hand(socket());
      const w = ws.find((x) => x.sent.length > 0)!;
      got.push(w.process.pid);
      w.receive();
      w.close();
    }
    expect(got).toEqual([1, 2, 3, 1, 2, 3]);
    expect(b.counts()).toEqual({ 1: 0, 2: 0, 3: 0 });
  });

  it('a new worker takes the new connections until it holds as many as the others', () => {
    const b = new Balancer();
    const [w1, w2, w3] = [fake(1), fake(2), fake(3)];
    b.add(w1);
    b.add(w2);
    for (let i = 0; i < 8; i++) b.hand(socket());
    w1.receive();
    w2.receive();
    b.remove(w1); // it died with its 4
    b.add(w3);
    for (let i = 0; i < 4; i++) b.hand(socket());
    expect(b.counts()).toEqual({ 2: 4, 3: 4 });
  });

  it('keeps its copy of a connection until the worker says it received it; closes those it never did when the worker goes away', () => {
    const b = new Balancer();
    const [w1, w2] = [fake(1), fake(2)];
    b.add(w1);
    b.add(w2);
    const ss = Array.from({ length: 6 }, socket);
    for (const s of ss) b.hand(s);
    expect(ss.some((s) => s.destroyed)).toBe(false);
    w2.receive(); // the worker's copies are the connections now
    const [toW1, toW2] = [w1.sent.map((x) => x.socket as Socket & { destroyed: boolean }), ss.filter((s) => !w1.sent.some((x) => x.socket === s))];
    expect(toW2.every((s) => s.destroyed)).toBe(true);
    w1.connected = false;
    // a connection accepted before the worker's exit is known does not go to it
    const late = socket();
    b.hand(late);
    expect(w2.sent.map((x) => x.socket)).toEqual([late]);
    b.remove(w1); // its exit: what it never said it received is closed (it may have read a request first)
    expect(toW1.every((s) => s.destroyed)).toBe(true);
    expect(b.counts()).toEqual({ 2: 4 });
  });

  it('a connection whose send fails (the channel closed) goes to another worker, unread', () => {
    const b = new Balancer();
    const [w1, w2] = [fake(1), fake(2)];
    b.add(w1);
    b.add(w2);
    w1.isConnected = () => true; // not yet known to be gone
    w1.connected = false; // but its send fails
    const s = socket();
    b.hand(s);
    expect(w2.sent.map((x) => x.socket)).toEqual([s]);
    expect(s.destroyed).toBe(false);
  });

  it('a handoff lost on the way stops counting once the worker says what it received after it', () => {
    const b = new Balancer();
    const [w1, w2] = [fake(1), fake(2)];
    b.add(w1);
    b.add(w2);
    w1.deliver = false; // out of descriptors: Node gives up on these handles
    for (let i = 0; i < 4; i++) b.hand(socket());
    w1.receive();
    w2.receive();
    expect(b.counts()).toEqual({ 1: 0, 2: 2 });
    w1.deliver = true;
    for (let i = 0; i < 4; i++) b.hand(socket());
    expect(w1.sent).toHaveLength(3);
  });

  it('a draining worker gets no more connections', () => {
    const b = new Balancer();
    const [w1, w2] = [fake(1), fake(2)];
    b.add(w1);
    b.add(w2);
    w1.emit('message', { mayfly: 'draining' });
    for (let i = 0; i < 3; i++) b.hand(socket());
    expect(w1.sent).toHaveLength(0);
    expect(b.counts()).toEqual({ 2: 3 });
  });

  it('keeps connections waiting while no worker is ready, hands them to the first that is, and closes them on stop', () => {
    const b = new Balancer();
    const early = [socket(), socket()];
    for (const s of early) b.hand(s);
    const w = fake(1);
    b.add(w);
    expect(w.sent.map((x) => x.socket)).toEqual(early);
    w.receive();
    b.remove(w);
    const late = socket();
    b.hand(late);
    b.stop();
    expect(late.destroyed).toBe(true);
    const after = socket();
    b.hand(after);
    expect(after.destroyed).toBe(true);
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
    let seq = 0;
    const l: Server = createServer({ pauseOnConnect: true }, (s) => channel.emit('message', { mayfly: 'connection', seq: ++seq }, s));
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
    // each served connection gets TCP_NODELAY, as node:http's own accepted ones do
    const spy = vi.spyOn(Socket.prototype, 'setNoDelay');
    const served: Socket[] = [];
    server.on('connection', (s: Socket) => served.push(s));
    const stop = serveHandedConnections(server, channel);
    const port = await primary();
    expect(await exchange(port, 'GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')).toMatch(/^HTTP\/1\.1 200 OK[\s\S]*served$/);
    // headers that never end: answered 408 by node:http's connection tracking
    expect(await exchange(port, 'GET / HTTP/1.1\r\nHost: x\r\n')).toMatch(/^HTTP\/1\.1 408 /);
    const noDelay = spy.mock.contexts.filter((_, i) => spy.mock.calls[i]![0] !== false);
    spy.mockRestore();
    expect(served).toHaveLength(2);
    expect(served.every((s) => noDelay.includes(s))).toBe(true);
    stop();
    expect(await exchange(port, 'GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')).toBe('');
    // what it held, after each one came and each one closed, then that it drains (before the third came)
    await new Promise((r) => setTimeout(r, 50));
    expect(channel.told).toEqual([
      { mayfly: 'holding', open: 1, seq: 1 },
      { mayfly: 'holding', open: 0, seq: 1 },
      { mayfly: 'holding', open: 1, seq: 2 },
      { mayfly: 'holding', open: 0, seq: 2 },
      { mayfly: 'draining' },
      { mayfly: 'holding', open: 1, seq: 3 },
      { mayfly: 'holding', open: 0, seq: 3 },
    ]);
  });
});
