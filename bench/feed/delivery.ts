/**
 * Diagnostic: the broker's feed path alone, with no close request in flight and no verification. The
 * bench appends an event straight to the broker's revocation stream in Redis (a `token.revoked` for a
 * random jti: the same shape publishRevocation writes, harmless to every mirror) and times
 *
 *   - the XADD's own round trip,
 *   - a plain Redis subscriber (XREAD BLOCK on its own connection, in this process): the floor any
 *     Redis-fed fan-out could reach,
 *   - the arrival of the SSE chunk carrying the event at each verifier process (broker: FeedHub wakes
 *     on its blocking read, every stream connection reads the new entries and writes them).
 *
 * The verifiers are idle meanwhile (nothing armed), so the gap between the floor and the chunk
 * arrivals is the broker's own fan-out time.
 */
import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { sleep } from '../lib/net.js';
import type { VerifierFleet } from './fleet.js';
import { wallNow } from './protocol.js';

export interface DeliverySample {
  /** XADD reply − XADD sent (ms). */
  xaddMs: number;
  /** Plain XREAD BLOCK subscriber woken − XADD sent. */
  redisSubscriberMs: number;
  /** Per verifier: chunk arrival − XADD sent. */
  chunkMs: number[];
}

export async function measureDelivery(admin: Redis, streamKey: string, fleet: VerifierFleet, samples: number, log: (m: string) => void): Promise<DeliverySample[]> {
  const type = await admin.type(streamKey);
  if (type !== 'stream') throw new Error(`${streamKey} is a ${type}, not the broker's revocation stream: has the Redis layout changed?`);
  const sub = admin.duplicate({ enableAutoPipelining: false });
  const out: DeliverySample[] = [];
  try {
    let last = ((await admin.xrevrange(streamKey, '+', '-', 'COUNT', 1))[0]?.[0] as string | undefined) ?? '0-0';
    for (let k = 0; k < samples; k++) {
      const marker = `bench-delivery-${randomBytes(8).toString('hex')}`;
      const { seen } = await fleet.watch(k, marker, 5000);
      const woken = sub.xread('BLOCK', 5000, 'STREAMS', streamKey, last).then(() => wallNow());
      await sleep(2); // let the blocking read reach Redis first
      const sentAt = wallNow();
      const id = await admin.xadd(streamKey, '*', 'type', 'token.revoked', 'at', new Date().toISOString(), 'jti', marker);
      const ackAt = wallNow();
      if (typeof id !== 'string') throw new Error('XADD returned no id');
      last = id;
      const [wokenAt, chunks] = await Promise.all([woken, seen]);
      out.push({ xaddMs: ackAt - sentAt, redisSubscriberMs: wokenAt - sentAt, chunkMs: chunks.map((c) => c - sentAt) });
      await sleep(10 + Math.random() * 40);
    }
  } finally {
    sub.disconnect();
  }
  log(`  ${samples} feed-only events delivered to every verifier`);
  return out;
}
