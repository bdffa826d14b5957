/**
 * A TCP proxy the test can cut and restore: simulates Redis becoming unreachable (a partition, a
 * crash) against any real Redis, whether the harness started it or REDIS_URL points elsewhere.
 */
import { createConnection, createServer, type Server, type Socket } from 'node:net';

export interface Proxy {
  url: string;
  cut(): void;
  restore(): void;
  /** Holds what clients send (connections stay open, nothing is answered): a Redis that hangs. */
  stall(): void;
  /** Forwards what was held, and everything after. */
  unstall(): void;
  close(): Promise<void>;
}

export async function tcpProxy(target: string): Promise<Proxy> {
  const u = new URL(target);
  const sockets = new Set<Socket>();
  const clients = new Set<Socket>();
  let up = true;
  let stalled = false;
  const server: Server = createServer((client) => {
    if (!up) return client.destroy();
    const upstream = createConnection({ host: u.hostname, port: Number(u.port || 6379) });
    sockets.add(client).add(upstream);
    clients.add(client);
    client.pipe(upstream).pipe(client);
    if (stalled) client.pause();
    const drop = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
      clients.delete(client);
    };
    client.on('error', drop).on('close', drop);
    upstream.on('error', drop).on('close', drop);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  const auth = u.username || u.password ? `${u.username}:${u.password}@` : '';
  const cut = () => {
    up = false;
    for (const s of sockets) s.destroy();
    sockets.clear();
  };
  return {
    url: `${u.protocol}//${auth}127.0.0.1:${port}${u.pathname}`,
    cut,
    restore() {
      up = true;
    },
    stall() {
      stalled = true;
      for (const c of clients) c.pause();
    },
    unstall() {
      stalled = false;
      for (const c of clients) c.resume();
    },
    close: () =>
      new Promise<void>((r) => {
        cut();
        server.close(() => r());
      }),
  };
}
