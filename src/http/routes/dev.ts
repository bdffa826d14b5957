/**
 * POST /dev/attest {"workload": "<name>"}: mints a dev attestation JWT for a named workload. Mounted only
 * in dev mode, which listens on loopback only (config/schema.ts); it does not exist otherwise.
 */
import type { Hono } from 'hono';
import type { Broker } from '../../broker.js';
import { MayflyError } from '../../errors.js';
import { readJson } from '../body.js';

export function devRoutes(app: Hono, b: Broker): void {
  const mint = b.devMint;
  if (!b.config.dev || !mint) return;
  app.post('/dev/attest', async (c) => {
    const body = await readJson(c);
    const w = body.workload;
    if (typeof w !== 'string' || !/^[A-Za-z0-9._-]{1,128}$/.test(w))
      throw new MayflyError('invalid_request', 'workload must be a name of letters, digits, . _ - (1-128)', { reason: 'malformed_request' });
    return c.json({ token: await mint(w), token_type: 'urn:ietf:params:oauth:token-type:jwt', expires_in: 600 }, 200, { 'Cache-Control': 'no-store' });
  });
}
