/**
 * Durations as people write them in config and requests: "90s", "5m", "1h30m", "500ms", "2d".
 * Strict: a bare number, a negative, an unknown unit or trailing garbage is an error, never a guess.
 */
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const WHOLE = /^(?:\d{1,9}(?:ms|s|m|h|d))+$/;
const PART = /(\d{1,9})(ms|s|m|h|d)/g;

export function parseDuration(input: string): number | null {
  if (typeof input !== 'string' || input.length > 32 || !WHOLE.test(input)) return null;
  let total = 0;
  for (const [, n, unit] of input.matchAll(PART)) total += Number(n) * UNIT_MS[unit!]!;
  return Number.isSafeInteger(total) && total > 0 ? total : null;
}

export function formatDuration(ms: number): string {
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0) return `${ms / 60_000}m`;
  if (ms % 1000 === 0) return `${ms / 1000}s`;
  return `${ms}ms`;
}
