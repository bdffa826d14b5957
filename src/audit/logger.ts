/**
 * Structured logs (pino). Secrets and tokens never reach them: Mayfly code never passes a token or
 * secret to a log call, and redaction (below) censors the usual carriers anyway, in case one slips in.
 */
import { pino, type Logger, type DestinationStream } from 'pino';

export const REDACT_PATHS = [
  'token',
  'access_token',
  'subject_token',
  'actor_token',
  'client_secret',
  'password',
  'authorization',
  '*.token',
  '*.access_token',
  '*.subject_token',
  '*.actor_token',
  '*.client_secret',
  '*.authorization',
  '*.headers.authorization',
  '*.headers.cookie',
  'req.headers.authorization',
];

export function createLogger(level: string, dest?: DestinationStream): Logger {
  // pid: with several workers, which process a line comes from
  return pino({ level, base: { svc: 'mayfly', pid: process.pid }, redact: { paths: REDACT_PATHS, censor: '[redacted]' } }, dest);
}

export type { Logger };
