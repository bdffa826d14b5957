/** `mayfly introspect TOKEN`: ask the broker (RFC 7662) whether a token is active right now. */
import { COMMON_HELP, EXIT, parse, printJson, relative, requireClientOrOperator, table, tokenArg, type Io } from './common.js';
import { call } from './http.js';

const HELP = `usage: mayfly introspect [TOKEN | -] [options]

Asks the broker whether the access token is active (RFC 7662), as a resource-server client
(--client-id/--client-secret) or an operator (--operator-token). Reads the token from standard input
when it is - or missing.

output: "active" and the token's main claims, or "inactive"; exit 0 when active, 1 when not
(--json: the broker's answer)

${COMMON_HELP}`;

export interface Introspection {
  active: boolean;
  [claim: string]: unknown;
}

export function describeActive(i: Introspection, now = Date.now()): string {
  const exp = typeof i.exp === 'number' ? i.exp * 1000 : undefined;
  const act = i.act as { sub?: string } | undefined;
  return table([
    ['active', 'yes'],
    ['task', i.task_id as string],
    ['agent', i.client_id as string],
    ['on behalf of', act?.sub ? (i.sub as string) : undefined],
    ['audience', Array.isArray(i.aud) ? i.aud.join(' ') : (i.aud as string)],
    ['scope', i.scope as string],
    ['tools', Array.isArray(i.tools) ? i.tools.join(' ') : undefined],
    ['expires', exp ? `${new Date(exp).toISOString()} (${relative(exp, now)})` : undefined],
    ['jti', i.jti as string],
  ]);
}

export async function run(args: string[], io: Io): Promise<number> {
  const p = parse(args, {}, HELP, io, { positionals: [0, 1] });
  if (!p) return EXIT.ok;
  requireClientOrOperator(p.common);
  const token = tokenArg(p.positionals[0], io);
  const r = await call<Introspection>(p.common, '/oauth/introspect', { clientAuth: true, form: { token } });
  if (p.common.json) printJson(io, r);
  else io.out(r.active ? describeActive(r) : 'inactive');
  return r.active ? EXIT.ok : EXIT.refused;
}

