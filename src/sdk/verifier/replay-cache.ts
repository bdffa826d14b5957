/**
 * Seen proof ids (DPoP `jti`) until they could no longer be accepted anyway. Bounded: when full of
 * live entries it refuses new ones (fail closed) rather than forgetting one that could be replayed.
 */
export class ReplayCache {
  private seen = new Map<string, number>();

  constructor(private maxEntries = 100_000) {}

  /** Records `key` until `expiresAt`; false if it was already there (a replay) or the cache is full. */
  add(key: string, expiresAt: number, now: number): boolean {
    const prev = this.seen.get(key);
    if (prev !== undefined && prev > now) return false;
    if (this.seen.size >= this.maxEntries) this.sweep(now);
    if (this.seen.size >= this.maxEntries) return false;
    this.seen.set(key, expiresAt);
    return true;
  }

  get size(): number {
    return this.seen.size;
  }

  private sweep(now: number): void {
    for (const [k, exp] of this.seen) if (exp <= now) this.seen.delete(k);
  }
}
