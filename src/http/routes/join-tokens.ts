/**
 * POST /v1/join-tokens (operator): a one-time join token for a SPIFFE ID registered with
 * `attestor: join`. JSON {spiffe_id, ttl?} (default 10m, at most 24h) -> 201 {token, spiffe_id,
 * expires_at}. The token is shown once, here; the broker keeps only its hash (src/attest/join-token.ts).
 */
import type { Hono } from 'hono';
import type { Broker } from '../../broker.js';
import { MayflyError } from '../../errors.js';
import { parseDuration } from '../../config/duration.js';
import { joinRegistrations, joinTokenId, newJoinToken } from '../../attest/join-token.js';
import { requireOperator } from '../auth.js';
import { readJson } from '../body.js';

const DEFAULT_TTL_MS = 10 * 60_000;
const MAX_TTL_MS = 24 * 3_600_000;
const bad = (msg: string, reason = 'malformed_request') => new MayflyError('invalid_request', msg, { reason });

export function joinTokenRoutes(app: Hono, b: Broker): void {
  app.post('/v1/join-tokens', async (c) => {
    const op = await requireOperator(b, c);
    const body = await readJson(c, ['spiffe_id', 'ttl']);
    if (typeof body.spiffe_id !== 'string' || body.spiffe_id === '') throw bad('spiffe_id: a SPIFFE ID is required');
    const spiffeId = body.spiffe_id;
    let ttlMs = DEFAULT_TTL_MS;
    if (body.ttl !== undefined) {
      // a duration string, or whole seconds as a number (as POST /v1/tasks takes it)
      const d =
        typeof body.ttl === 'string' ? parseDuration(body.ttl) : typeof body.ttl === 'number' && Number.isSafeInteger(body.ttl) ? body.ttl * 1000 : null;
      if (d === null || d <= 0) throw bad('ttl: a duration such as "10m", or whole seconds');
      if (d > MAX_TTL_MS) throw bad('ttl: at most 24h');
      ttlMs = d;
    }
    if (!joinRegistrations(b).some((r) => r.spiffeId === spiffeId))
      throw bad(`no registration of ${spiffeId.slice(0, 300)} with attestor "join": a join token could not attest anything`, 'join_unregistered');
    const now = b.clock.now();
    const { token, hash } = newJoinToken();
    const expiresAt = now + ttlMs;
    await b.store.putJoinToken(hash, { spiffeId, createdBy: `operator:${op}`, createdAt: now, expiresAt }, now);
    b.audit.record('join_token.created', { id: joinTokenId(hash), spiffe_id: spiffeId, by: `operator:${op}`, expires_at: new Date(expiresAt).toISOString() });
    return c.json({ token, spiffe_id: spiffeId, expires_at: new Date(expiresAt).toISOString() }, 201, { 'Cache-Control': 'no-store' });
  });
}
