/**
 * Server-side command timing from Redis' SLOWLOG: with the threshold at 0 every command is logged with
 * its execution time in microseconds (excluding network and queueing). Only on a Redis the bench owns.
 */
import type { Redis } from 'ioredis';

export interface SlowlogEntry {
  micros: number;
  args: string[];
}

export class Slowlog {
  private previous: string | undefined;
  constructor(private redis: Redis) {}

  async start(): Promise<void> {
    const cur = (await this.redis.config('GET', 'slowlog-log-slower-than')) as string[];
    this.previous = cur[1];
    await this.redis.config('SET', 'slowlog-log-slower-than', '0');
    await this.redis.slowlog('RESET');
  }

  /** Entries since start(), oldest first; restores the previous threshold. */
  async stop(): Promise<SlowlogEntry[]> {
    const raw = (await this.redis.slowlog('GET', 1000)) as [number, number, number, string[]][];
    await this.redis.config('SET', 'slowlog-log-slower-than', this.previous ?? '10000');
    return raw.map((e) => ({ micros: Number(e[2]), args: e[3].map(String) })).reverse();
  }
}
