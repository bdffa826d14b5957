import { randomBytes } from 'node:crypto';

/** Time and randomness are injected so deadline and race tests are exact without sleeping. */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };

/** A clock tests can move by hand. */
export class ManualClock implements Clock {
  constructor(private t = Date.now()) {}
  now(): number {
    return this.t;
  }
  advance(ms: number): void {
    this.t += ms;
  }
  set(ms: number): void {
    this.t = ms;
  }
}

export type IdSource = (bytes?: number) => string;

/** 128 random bits, base64url: used for jti and task ids. */
export const randomId: IdSource = (bytes = 16) => randomBytes(bytes).toString('base64url');
