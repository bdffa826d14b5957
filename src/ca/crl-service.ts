/**
 * The CRL (RFC 5280 §5): every unexpired certificate revoked by serial, or covered by a closed task, a
 * locked identity or a revoked principal. Built from the store's CRL indexes, cached, and rebuilt only
 * when the store's CRL version moves or the cached one is half-way to its nextUpdate; concurrent
 * fetches share one build. Closing a task only adds it to an index (O(1)); its serials are expanded here.
 */
import type { Broker } from '../broker.js';
import { buildCrl, type CrlEntry } from '../x509/index.js';

interface Cached {
  der: Buffer;
  version: number;
  builtAt: number;
}

export class CrlService {
  private cached: Cached | undefined;
  private building: Promise<Cached> | undefined;

  constructor(private readonly b: Broker) {}

  async current(): Promise<Buffer> {
    const now = this.b.clock.now();
    const version = await this.b.store.crlVersion();
    const c = this.cached;
    if (c && c.version === version && now - c.builtAt < this.b.config.caDefaults.crlValidityMs / 2) return c.der;
    this.building ??= this.build(version).finally(() => (this.building = undefined));
    return (await this.building).der;
  }

  private async build(version: number): Promise<Cached> {
    const { store, clock } = this.b;
    const now = clock.now();
    const entries = new Map<string, number>();
    const add = (serial: string, at: number) => entries.has(serial) || entries.set(serial, Math.min(at, now));
    const [single, tasks, idents, prins] = await Promise.all([
      store.revokedCertificates(now),
      store.crlScopes('task', now),
      store.crlScopes('identity', now),
      store.crlScopes('principal', now),
    ]);
    for (const r of single) add(r.serial, r.revokedAt);
    await Promise.all([
      ...tasks.map(async (id) => {
        const [task, certs] = await Promise.all([store.getTask(id), store.taskCertificates(id, now)]);
        for (const serial of certs) add(serial, task?.closedAt ?? now);
      }),
      ...idents.map(async (id) => {
        const s = await store.identityState(id);
        for (const c of await store.holderCertificates('identity', id, s.revokedBefore, now)) add(c.serial, s.revokedBefore);
      }),
      ...prins.map(async (p) => {
        const cutoff = await store.principalRevokedBefore(p);
        for (const c of await store.holderCertificates('principal', p, cutoff, now)) add(c.serial, cutoff);
      }),
    ]);
    const dates = new Map<number, Date>(); // one Date per distinct instant, not per serial
    const list: CrlEntry[] = [];
    for (const [serialHex, at] of entries) {
      let d = dates.get(at);
      if (!d) dates.set(at, (d = new Date(at)));
      list.push({ serialHex, revokedAt: d });
    }
    const der = buildCrl(this.b.ca, {
      entries: list,
      thisUpdate: new Date(now),
      nextUpdate: new Date(now + this.b.config.caDefaults.crlValidityMs),
      crlNumber: BigInt(now), // increases with every CRL this CA issues, across replicas
    });
    this.cached = { der, version, builtAt: now };
    return this.cached;
  }
}
