/**
 * The embedded default: what `mayfly dev` runs on a fresh clone with no config and no Redis. Memory
 * store, generated signing keys, the dev attestor, and a small cast: an orchestrator ("planner"), two
 * agents ("coder", "reviewer"), a resource server client and an operator whose secrets are generated
 * at every start.
 */
import { randomBytes } from 'node:crypto';
import { buildConfig } from './load.js';
import type { Config } from './config.js';

export const DEV_TRUST_DOMAIN = 'mayfly.local';

export function devConfig(port = 8080, env: NodeJS.ProcessEnv = process.env): Config {
  const secret = () => randomBytes(18).toString('base64url');
  const td = DEV_TRUST_DOMAIN;
  return buildConfig(
    {
      dev: true,
      issuer: `http://127.0.0.1:${port}`,
      trust_domain: td,
      listen: { host: '127.0.0.1', port },
      store: 'memory',
      tokens: { default_ttl: '5m', max_ttl: '15m', alg: 'ES256' },
      keys: { dir: env.MAYFLY_KEYS_DIR ?? '.mayfly/dev-keys' },
      registrations: [
        {
          spiffe_id: `spiffe://${td}/orchestrator/planner`,
          attestor: 'dev',
          match: { sub: 'planner' },
          owner: 'team-platform@example.com',
          roles: ['orchestrator'],
          scopes: ['repo:read', 'repo:write', 'tickets:read'],
          tools: ['github.search', 'github.create_pr', 'jira.read'],
          audiences: ['https://api.github.example', 'https://jira.example'],
        },
        ...['coder', 'reviewer'].map((name) => ({
          spiffe_id: `spiffe://${td}/agent/${name}`,
          attestor: 'dev',
          match: { sub: name },
          owner: 'team-agents@example.com',
          roles: ['agent'],
          scopes: name === 'coder' ? ['repo:read', 'repo:write'] : ['repo:read', 'tickets:read'],
          tools: name === 'coder' ? ['github.search', 'github.create_pr'] : ['github.search', 'jira.read'],
          audiences: ['https://api.github.example', 'https://jira.example'],
          max_ttl: '5m',
          certificates: name === 'coder', // X509-SVIDs too (POST /v1/certificates)
        })),
      ],
      clients: [{ client_id: 'resource-server', client_secret: env.MAYFLY_DEV_CLIENT_SECRET ?? secret() }],
      operators: [{ name: 'admin', token: env.MAYFLY_DEV_OPERATOR_TOKEN ?? secret() }],
      log: { level: env.MAYFLY_LOG_LEVEL ?? 'info' },
    },
    'embedded dev default',
    {},
  );
}
