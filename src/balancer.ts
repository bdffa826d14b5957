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
 * - the primary sends `{mayfly: 'connection', seq}` with the socket, still paused, so no byte was read yet;
 * - the worker says `{mayfly: 'holding', open, seq}` whenever it received one or one closed, so the
 *   primary's counts follow what the worker holds, even for a handoff lost on the way;
 * - a worker that shuts down says `{mayfly: 'draining'}`, and gets no more.
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

/** Primary -> worker, with the connection's socket as the handle; `seq` numbers the handoffs to that worker. */
interface ConnectionMessage {
  mayfly: 'connection';
  seq: number;
}
/**
 * Worker -> primary, after each handoff it received and each connection that closed: how many it
 * holds, and the last handoff it received (any before it that never came was lost on the way).
 */
interface HoldingMessage {
  mayfly: 'holding';
  open: number;
  seq: number;
}
/** Worker -> primary: it takes no more connections (it is shutting down). */
interface DrainingMessage {
  mayfly: 'draining';
}

const isMessage = <T extends { mayfly: string }>(m: unknown, kind: T['mayfly']): m is T =>
  typeof m === 'object' && m !== null && (m as { mayfly?: unknown }).mayfly === kind;

/** Connections accepted while no worker is ready (at start, or all being replaced) wait, up to this many. */
const MAX_WAITING = 1024;

/** What the primary knows of one worker's connections. */
interface Holding {
  /** As the worker last said. */
  open: number;
  /**
   * Handed since, not yet said received, by seq: the primary keeps its own copy of each (`keepOpen`)
   * until then. Node sends one handle at a time and queues the rest; a worker that dies leaves them
   * unsent or unread, and Node then closes none (a dead channel with a handle awaiting its
   * acknowledgement is never torn down): closing its copy is what ends such a connection for its client.
   */
  unconfirmed: Map<number, Socket>;
  nextSeq: number;
}

export class Balancer {
  private readonly workers = new Map<Worker, Holding>();
  private readonly waiting: Socket[] = [];
  /** The worker handed the last connection: ties go to the next one, so equal workers take turns. */
  private last: Worker | undefined;
  private stopped = false;

  /** A worker that serves: it takes connections from now on, until it drains or its channel closes. */
  add(w: Worker): void {
    if (this.stopped || this.workers.has(w)) return;
    const h: Holding = { open: 0, unconfirmed: new Map(), nextSeq: 1 };
    this.workers.set(w, h);
    w.on('message', (m: unknown) => {
      if (isMessage<HoldingMessage>(m, 'holding') && Number.isInteger(m.open) && Number.isInteger(m.seq)) {
        h.open = m.open;
        // received (or lost on the way): the worker's copy is the connection now
        for (const [seq, s] of h.unconfirmed)
          if (seq <= m.seq) {
            h.unconfirmed.delete(seq);
            s.destroy();
          }
      } else if (isMessage<DrainingMessage>(m, 'draining')) this.remove(w);
    });
    w.once('disconnect', () => this.remove(w));
    while (this.waiting.length > 0 && this.least()) this.hand(this.waiting.shift()!);
  }

  /**
   * A worker that drains, or went away: no more connections to it. Those it did not say it received are
   * closed: it may have read a request from one before it died, so another worker could not answer it.
   */
  remove(w: Worker): void {
    const h = this.workers.get(w);
    if (!h) return;
    this.workers.delete(w);
    if (this.last === w) this.last = undefined;
    for (const s of h.unconfirmed.values()) s.destroy();
    h.unconfirmed.clear();
  }

  /** An accepted connection: to the ready worker holding the fewest, or to wait for one. */
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
    const h = this.workers.get(w)!;
    const seq = h.nextSeq++;
    h.unconfirmed.set(seq, socket);
    this.last = w;
    w.send({ mayfly: 'connection', seq } satisfies ConnectionMessage, socket, { keepOpen: true }, (err: Error | null) => {
      // not sent (the channel closed meanwhile), so unread: to another worker, unless its removal closed it
      if (err && h.unconfirmed.delete(seq)) this.hand(socket);
    });
  }

  /** Connections per ready worker (said open, and handed since), by pid. */
  counts(): Record<number, number> {
    const out: Record<number, number> = {};
    for (const [w, h] of this.workers) out[w.process.pid!] = h.open + h.unconfirmed.size;
    return out;
  }

  /** No more connections: those still waiting are closed. */
  stop(): void {
    this.stopped = true;
    for (const s of this.waiting.splice(0)) s.destroy();
  }

  private least(): Worker | undefined {
    const ws = [...this.workers.keys()];
    // start after the last one handed a connection, so a tie goes to the next in turn
    const start = this.last ? ws.indexOf(this.last) + 1 : 0;
    let best: Worker | undefined;
    let bestN = Infinity;
    for (let k = 0; k < ws.length; k++) {
      const w = ws[(start + k) % ws.length]!;
      if (!w.isConnected()) continue; // dying: its exit (workers.ts) or 'disconnect' removes it
      const h = this.workers.get(w)!;
      const n = h.open + h.unconfirmed.size;
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
 * tells the primary how many it holds. Returns a function that stops taking them: the primary is told,
 * and any handed meanwhile is closed.
 */
export function serveHandedConnections(server: Server, channel: PrimaryChannel = process): () => void {
  let taking = true;
  let open = 0;
  let lastSeq = 0;
  // node:http starts tracking its connections (the header and request timeouts) when it listens: as
  // this server never does, it is told it serves now
  server.emit('listening');
  const report = () => {
    if (channel.connected) channel.send?.({ mayfly: 'holding', open, seq: lastSeq } satisfies HoldingMessage);
  };
  channel.on('message', (m: unknown, handle: unknown) => {
    if (!isMessage<ConnectionMessage>(m, 'connection')) return;
    if (Number.isInteger(m.seq) && m.seq > lastSeq) lastSeq = m.seq;
    const socket = handle as Socket | undefined;
    if (!socket) return report(); // it closed on the way
    open++;
    socket.once('close', () => {
      open--;
      report();
    });
    report();
    if (!taking) return void socket.destroy();
    // as node:http does to each connection it accepts itself (its noDelay option, on by default): no
    // Nagle delay, which would hold an answer's second write back until the client acknowledged the first
    socket.setNoDelay(true);
    server.emit('connection', socket);
    socket.resume(); // the primary accepted it paused (pauseOnConnect)
  });
  return () => {
    if (!taking) return;
    taking = false;
    if (channel.connected) channel.send?.({ mayfly: 'draining' } satisfies DrainingMessage);
  };
}
