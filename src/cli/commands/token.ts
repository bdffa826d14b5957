/** `mayfly token`: exchange an attestation for a task-bound access token (RFC 8693), or decode one. */
import { GRANT_TOKEN_EXCHANGE, subjectTokenType } from '../../sdk/client/exchange.js';
import { agentAttestation, COMMON_HELP, EXIT, parse, printJson, tokenArg, UsageError, type Io } from './common.js';
import { decodeJwt, withTimes } from './decode.js';
import { call } from './http.js';

const HELP = `usage: mayfly token --task TASK_ID [--scope S]... [--tool T]... [--audience A]... [options]
       mayfly token --decode [TOKEN | -]

Exchanges your attestation (--token, --token-file, $MAYFLY_TOKEN, or --dev-workload NAME against a dev
broker) for an access token bound to the task, and prints it. Omitting --scope/--tool/--audience asks
for everything the task and your registration allow; asking for more is refused, never trimmed.
--decode prints a token's header and claims without verifying anything (see mayfly inspect).

options:
  --task ID            the task (required unless --decode)
  --scope S            scope (repeatable, or space-separated)
  --tool T             tool (repeatable, or space-separated)
  --audience A         audience / resource (repeatable)
  --dev-workload NAME  get the attestation from the dev attestor (POST /dev/attest; dev mode only)
  --decode             decode the token given as argument (or - / nothing: standard input)

output: the access token (--json: the token endpoint's whole answer)

${COMMON_HELP}`;

const OWN = {
  task: { type: 'string' },
  scope: { type: 'string', multiple: true },
  tool: { type: 'string', multiple: true },
  audience: { type: 'string', multiple: true },
  'dev-workload': { type: 'string' },
  decode: { type: 'boolean' },
} as const;

const words = (l: string[] | undefined) => (l ? l.flatMap((x) => x.split(' ')).filter(Boolean) : undefined);

export async function run(args: string[], io: Io): Promise<number> {
  const p = parse(args, OWN, HELP, io, { positionals: [0, 1] });
  if (!p) return EXIT.ok;
  const v = p.values as { task?: string; scope?: string[]; tool?: string[]; audience?: string[]; 'dev-workload'?: string; decode?: boolean };
  if (v.decode) {
    const d = decodeJwt(tokenArg(p.positionals[0], io));
    printJson(io, { header: d.header, payload: p.common.json ? d.payload : withTimes(d.payload) });
    return EXIT.ok;
  }
  if (p.positionals.length) throw new UsageError(`unexpected argument ${p.positionals[0]} (did you mean --decode?)`);
  if (!v.task) throw new UsageError(`--task is required`);
  const scope = words(v.scope);
  const tools = words(v.tool);
  const subject = await agentAttestation(p.common, v['dev-workload'], 'token');
  const r = await call<{ access_token: string }>(p.common, '/oauth/token', {
    form: {
      grant_type: GRANT_TOKEN_EXCHANGE,
      subject_token: subject,
      subject_token_type: subjectTokenType(subject),
      task_id: v.task,
      scope: scope?.join(' '),
      tools: tools?.join(' '),
      audience: v.audience,
    },
  });
  if (p.common.json) printJson(io, r);
  else io.out(r.access_token);
  return EXIT.ok;
}

