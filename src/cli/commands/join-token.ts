/** `mayfly join-token create`: a one-time join token for a workload registered with `attestor: join`. */
import { COMMON_HELP, EXIT, parse, printJson, requireOperator, ttlValue, type Io } from './common.js';
import { call } from './http.js';

const HELP = `usage: mayfly join-token create SPIFFE_ID [--ttl 10m]   (operator)

A one-time join token for SPIFFE_ID, which must be registered with \`attestor: join\`. The workload
presents it once, as its attestation (\`mayfly token --token mfjt_… --task ID\`, or the SDK client);
that first use consumes it, on every replica. It is printed once: the broker keeps only its hash.
  --ttl DURATION          how long it stays usable, e.g. 10m, or whole seconds (default 10m, at most 24h)

${COMMON_HELP}`;

export async function run(args: string[], io: Io): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === undefined || sub === '--help' || sub === '-h') {
    io.out(HELP);
    return sub === undefined ? EXIT.usage : EXIT.ok;
  }
  if (sub !== 'create') {
    io.err(`mayfly join-token: unknown subcommand "${sub}" (expected create)\n${HELP}`);
    return EXIT.usage;
  }
  const p = parse(rest, { ttl: { type: 'string' } }, HELP, io, { positionals: 1 });
  if (!p) return EXIT.ok;
  const ttl = typeof p.values.ttl === 'string' ? p.values.ttl : undefined;
  const r = await call<{ token: string; spiffe_id: string; expires_at: string }>(p.common, '/v1/join-tokens', {
    bearer: requireOperator(p.common),
    json: { spiffe_id: p.positionals[0], ...(ttl ? { ttl: ttlValue(ttl) } : {}) },
  });
  if (p.common.json) printJson(io, r);
  else {
    io.out(r.token);
    io.err(`join token for ${r.spiffe_id}, usable once until ${r.expires_at}`);
  }
  return EXIT.ok;
}
