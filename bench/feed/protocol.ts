/**
 * What the bench process and its verifier children (verifier-child.ts) say to each other over Node's
 * IPC channel, and the clock both sides stamp events with.
 *
 * The clock: `performance.timeOrigin + performance.now()`, i.e. wall-clock milliseconds with
 * sub-millisecond resolution, monotonic within a process. Every process on the machine reads the same
 * system clock, so the stamps are comparable across processes without sending anything at the moment
 * of measurement (IPC transit time never enters a measured interval). The only cross-process error is
 * how each process anchored `timeOrigin` (a sample of the wall clock at its start, plus any clock slew
 * since): fleet.ts measures that offset per child with NTP-style IPC ping-pongs before and after the
 * trials and subtracts it. (`process.hrtime` is not used: its origin is documented as arbitrary per
 * process.)
 */

export const wallNow = (): number => performance.timeOrigin + performance.now();

/** The config a verifier child gets as its one JSON argument. */
export interface ChildConfig {
  index: number;
  /** file: URL of the SDK entry (compiled build, or src/sdk/index.ts with --tsx). */
  sdkUrl: string;
  issuer: string;
  clientId: string;
  clientSecret: string;
  audience: string;
  /** Backstop: while armed, also verify on a timer every this many ms (0: off). */
  pollMs: number;
}

/** How a child noticed the refusal: right after a feed chunk reached the verifier, by the backstop timer, or by the parent's probe. */
export type DetectedBy = 'chunk' | 'poll' | 'probe';

export type ToChild =
  | { type: 'ping'; id: number }
  | { type: 'arm'; trial: number; token: string; taskId: string }
  | { type: 'probe'; trial: number }
  | { type: 'disarm'; trial: number }
  /** Report the arrival of the first feed chunk containing `marker` (feed delivery without verification). */
  | { type: 'watch'; id: number; marker: string }
  | { type: 'status' };

export interface Refusal {
  type: 'refused';
  index: number;
  trial: number;
  /** Child clock: when verify() resolved with the refusal. */
  at: number;
  /** Child clock: when that verify() call started. */
  checkStartedAt: number;
  code: string;
  reason: string | null;
  by: DetectedBy;
  /** Child clock: arrival of the feed chunk that carried this task's event (null if not seen). */
  chunkAt: number | null;
  /** The event's stream id (`<ms>-<seq>`, Redis's clock at XADD), parsed from that chunk. */
  eventId: string | null;
  /** verify() calls made while armed, this one included. */
  checks: number;
}

export type FromChild =
  | { type: 'ready'; index: number; pid: number }
  | { type: 'pong'; index: number; id: number; at: number }
  | { type: 'armed'; index: number; trial: number; ok: boolean; code: string | null }
  | Refusal
  | { type: 'probe'; index: number; trial: number; at: number; ok: boolean; code: string | null }
  | { type: 'watching'; index: number; id: number }
  | { type: 'seen'; index: number; id: number; at: number }
  | { type: 'status'; index: number; status: unknown }
  | { type: 'fatal'; index: number; message: string };

export function isFromChild(m: unknown): m is FromChild {
  return typeof m === 'object' && m !== null && typeof (m as { type?: unknown }).type === 'string';
}
