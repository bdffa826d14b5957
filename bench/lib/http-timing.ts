/**
 * Timing single requests on an idle server over one kept-alive node:http connection (no fetch/undici
 * overhead in the client), so a measured round trip is the server's work plus loopback.
 */
import { Agent, request } from 'node:http';
import type { HttpRequestSpec } from './mayfly-client.js';

export class TimedClient {
  private agent = new Agent({ keepAlive: true, maxSockets: 1 });
  constructor(private baseUrl: string) {}

  /** Sends the request; resolves with the status, body and the round-trip time in ms. */
  async send(req: { method: string; path: string; headers?: Record<string, string>; body?: string }): Promise<{ status: number; body: string; ms: number }> {
    const r = await this.sendBytes(req);
    return { ...r, body: r.body.toString() };
  }

  /** As send(), with the body as raw bytes (e.g. a DER CRL). */
  sendBytes(req: { method: string; path: string; headers?: Record<string, string>; body?: string }): Promise<{ status: number; body: Buffer; ms: number }> {
    const url = new URL(req.path, this.baseUrl);
    const body = req.body ?? '';
    return new Promise((resolve, reject) => {
      const t0 = performance.now();
      const r = request(url, { method: req.method, agent: this.agent, headers: { ...req.headers, 'content-length': String(Buffer.byteLength(body)) }, timeout: 10_000 }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks), ms: performance.now() - t0 }));
        res.on('error', reject);
      });
      r.on('timeout', () => r.destroy(new Error('timeout')));
      r.on('error', reject);
      r.end(body);
    });
  }

  async json<T>(req: HttpRequestSpec, expect: number): Promise<{ value: T; ms: number }> {
    const r = await this.send(req);
    if (r.status !== expect) throw new Error(`${req.method} ${req.path}: HTTP ${r.status}: ${r.body.slice(0, 300)}`);
    return { value: JSON.parse(r.body) as T, ms: r.ms };
  }

  close(): void {
    this.agent.destroy();
  }
}
