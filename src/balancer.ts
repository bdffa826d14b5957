/**
 * With `workers` ≥ 2, the primary accepts every connection and hands it to the ready worker holding
 * the fewest open ones (least connections, as nginx's `least_conn` or HAProxy's `leastconn`).
 *
 * node:cluster's own round-robin hands each connection to whichever worker acknowledged the previous
 * one first. So a burst of keep-alive connections splits by how busy each worker happened to be at that
 * moment, and the split holds for as long as the connections do. Measured at 64 connections over 2
 * workers: 27/38, 35/30, 34/30. The worker with more connections answers each of them later, by its
 * share.
 *
 * Both halves of the exchange are here:
 * - the primary sends `{mayfly: 'connection'}` with the socket, still paused, so no byte was read yet;
 * - the worker answers `{mayfly: 'closed'}` when that connection closes.
 * TLS is the worker's: the primary only passes the TCP connection.
 */
import cluster, { type Worker } from 'node:cluster';
import type { AddressInfo, Server, Socket } from 'node:net';

/** Where the primary listens, as the workers it forks are told (they serve, but do not listen). */
const ADDRESS_ENV = 'MAYFLY_PRIMARY_ADDRESS';

/** The environment of a worker forked behind a primary listening at `addr`. */
export const workerEnv = (addr: AddressInfo): Record<string, string> => ({ [ADDRESS_ENV]: JSON.stringify(addr) });

/** In a worker forked by a primary that listens: the primary's address; otherwise undefined (listen yourself). */
export function primaryAddress(): AddressInfo | undefined {
  const raw = cluster.isWorker ? process.env[ADDRESS_ENV] : undefined;
  return raw ? (JSON.parse(raw) as AddressInfo) : undefined;
}

/** Primary -> worker, with the connection's socket as the handle. */
interface ConnectionMessage {
  mayfly: 'connection';
}
/** Worker -> primary: one connection it was handed has closed. */
interface ClosedMessage {
  mayfly: 'closed';
}

const isMessage = <T extends { mayfly: string }>(m: unknown, kind: T['mayfly']): m is T =>
  typeof m === 'object' && m !== null && (m as { mayfly?: unknown }).mayfly === kind;

/** Connections accepted while no worker is ready (at start, or all being replaced) wait, up to this many. */
const MAX_WAITING = 1024;

export class Balancer {
  /** Ready workers, each with how many of the connections it was handed are still open. */
  private readonly open = new Map<Worker, number>();
  private readonly waiting: Socket[] = [];
  /** The worker handed the last connection: ties go to the next one, so equal workers take turns. */
  private last: Worker | undefined;
  private stopped = false;

  /** A worker that serves: it takes connections from now on. */
  add(w: Worker): void {
    if (this.stopped || this.open.has(w)) return;
    this.open.set(w, 0);
    w.on('message', (m: unknown) => {
      const n = this.open.get(w);
      if (n !== undefined && isMessage<ClosedMessage>(m, 'closed')) this.open.set(w, Math.max(0, n - 1));
    });
    while (this.waiting.length > 0 && this.open.size > 0) this.hand(this.waiting.shift()!);
  }

  /** A worker that exited: its connections went with it. */
  remove(w: Worker): void {
    this.open.delete(w);
    if (this.last === w) this.last = undefined;
  }

  /** An accepted connection: to the ready worker with the fewest open, or to wait for one. */
  hand(socket: Socket): void {
    if (this.stopped) return void socket.destroy();
    const w = this.least();
    if (!w) {
      if (this.waiting.length >= MAX_WAITING) return void socket.destroy();
      this.waiting.push(socket);
      socket.once('close', () => {
        const i = this.waiting.indexOf(socket);
        if (i >= 0) this.waiting.splice(i, 1);
      });
      return;
    }
    this.last = w;
    this.open.set(w, this.open.get(w)! + 1);
    w.send({ mayfly: 'connection' } satisfies ConnectionMessage, socket, (err: Error | null) => {
      if (!err) return;
      // the worker is going away (its exit removes it): this connection is lost, as it would be with it
      const n = this.open.get(w);
      if (n !== undefined) this.open.set(w, Math.max(0, n - 1));
      socket.destroy();
    });
  }

  /** Open connections per ready worker, by pid. */
  counts(): Record<number, number> {
    const out: Record<number, number> = {};
    for (const [w, n] of this.open) out[w.process.pid!] = n;
    return out;
  }

  /** No more connections: those still waiting are closed. */
  stop(): void {
    this.stopped = true;
    for (const s of this.waiting.splice(0)) s.destroy();
  }

  private least(): Worker | undefined {
    const ws = [...this.open.keys()];
    if (ws.length === 0) return undefined;
    // start after the last one handed a connection, so a tie goes to the next in turn
    const start = this.last ? ws.indexOf(this.last) + 1 : 0;
    let best: Worker | undefined;
    let bestN = Infinity;
    for (let k = 0; k < ws.length; k++) {
      const w = ws[(start + k) % ws.length]!;
      const n = this.open.get(w)!;
      if (n < bestN) {
        best = w;
        bestN = n;
      }
    }
    return best;
  }
}

/** The worker's end of its IPC channel to the primary (`process` in a cluster worker). */
export interface PrimaryChannel {
  on(event: 'message', listener: (m: unknown, handle: unknown) => void): unknown;
  send?(m: unknown): unknown;
  readonly connected?: boolean;
}

/**
 * In a worker: serves on `server` the connections the primary hands over (instead of listening), and
 * tells the primary when each closes. Returns a function that stops taking them (any handed later is
 * closed).
 */
export function serveHandedConnections(server: Server, channel: PrimaryChannel = process): () => void {
  let taking = true;
  // node:http starts tracking its connections (the header and request timeouts) when it listens: as
  // this server never does, it is told it serves now
  server.emit('listening');
  const closed = () => {
    if (channel.connected) channel.send?.({ mayfly: 'closed' } satisfies ClosedMessage);
  };
  channel.on('message', (m: unknown, handle: unknown) => {
    if (!isMessage<ConnectionMessage>(m, 'connection')) return;
    const socket = handle as Socket | undefined;
    if (!socket) return closed(); // it closed between the primary's send and now: counted back all the same
    socket.once('close', closed);
    if (!taking) return void socket.destroy();
    server.emit('connection', socket);
    socket.resume(); // the primary accepted it paused (pauseOnConnect)
  });
  return () => {
    taking = false;
  };
}
