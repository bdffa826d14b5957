/**
 * What every client-side command shares: the common flags (broker URL, credentials, --json), how
 * answers become exit codes (0 ok, 1 refused or inactive, 2 usage or configuration), and output.
 */
import { devAttestor, staticToken, type AttestationSource } from '../../sdk/client/attestation.js';
import { readFileSync } from 'node:fs';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { BrokerError, type BrokerCredentials, type FetchLike } from '../../sdk/http.js';

export const EXIT = { ok: 0, refused: 1, usage: 2 } as const;

/** A problem with how the command was called or configured: exit 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}

/** The broker (or the token) said no: exit 1. */
export class Refused extends Error {
  override name = 'Refused';
}

export interface Io {
  out(s: string): void;
  err(s: string): void;
  env: NodeJS.ProcessEnv;
  stdin(): string;
}

export const processIo: Io = {
  out: (s) => process.stdout.write(s.endsWith('\n') ? s : `${s}\n`),
  err: (s) => process.stderr.write(s.endsWith('\n') ? s : `${s}\n`),
  env: process.env,
  stdin: () => readFileSync(0, 'utf8'),
};

type Options = NonNullable<ParseArgsConfig['options']>;

export const COMMON_OPTIONS = {
  url: { type: 'string' },
  token: { type: 'string' },
  attestation: { type: 'string' },
  'token-file': { type: 'string' },
  'client-id': { type: 'string' },
  'client-secret': { type: 'string' },
  'operator-token': { type: 'string' },
  json: { type: 'boolean' },
  timeout: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const satisfies Options;

/** How long a call waits for the broker's answer unless --timeout / $MAYFLY_TIMEOUT says otherwise (whole seconds). */
const DEFAULT_TIMEOUT_S = 30;
const MAX_TIMEOUT_S = 3600;

export const COMMON_HELP = `common options:
  --url URL               broker URL (default: $MAYFLY_URL or http://127.0.0.1:8080)
  --token JWT             your attestation JWT (alias --attestation; default: $MAYFLY_TOKEN)
  --token-file PATH       read the attestation JWT from a file on each use ($MAYFLY_TOKEN_FILE)
  --client-id ID          resource-server client ($MAYFLY_CLIENT_ID)
  --client-secret SECRET  its secret ($MAYFLY_CLIENT_SECRET)
  --operator-token TOKEN  operator bearer token ($MAYFLY_OPERATOR_TOKEN)
  --json                  machine-readable output
  --timeout SECONDS       how long to wait for the broker's answer, 1-${MAX_TIMEOUT_S} ($MAYFLY_TIMEOUT; default ${DEFAULT_TIMEOUT_S})
  -h, --help              this help

exit codes: 0 ok, 1 refused or inactive, 2 usage or configuration error: bad options, an unreachable
broker, or credentials it does not accept (errors go to stderr)
`;

export interface Common {
  url: string;
  json: boolean;
  /** fetch that gives up after --timeout: a TimeoutError naming the broker and the wait (exit 2). */
  fetch: FetchLike;
  io: Io;
  /** The caller's attestation JWT, if given. */
  attestation(): string | undefined;
  credentials: BrokerCredentials;
}

/**
 * The agent's attestation for `command`: from the dev attestor (--dev-workload NAME, dev brokers only),
 * else --token / --token-file / $MAYFLY_TOKEN; a usage error when there is none.
 */
export async function agentAttestation(c: Common, devWorkload: string | undefined, command: string): Promise<string> {
  let source: AttestationSource;
  if (devWorkload) source = devAttestor(c.url, devWorkload, { fetch: c.fetch });
  else {
    const att = c.attestation();
    if (!att) throw new UsageError(`${command}: no attestation: pass --token, --token-file, $MAYFLY_TOKEN, or --dev-workload NAME`);
    source = staticToken(att);
  }
  try {
    return await source.token();
  } catch (e) {
    if (e instanceof BrokerError) throw fromBrokerError(e, c.url);
    throw e;
  }
}

/**
 * fetch that waits `seconds` at most for the broker (a hung process, a blackholed route): then a
 * TimeoutError (which request() passes on and main.ts answers with exit 2) that says so.
 */
function timedFetch(url: string, seconds: number): FetchLike {
  const noAnswer = () => Object.assign(new Error(`no answer from the broker at ${url} within ${seconds} s (--timeout)`), { name: 'TimeoutError' });
  return async (input, init) => {
    try {
      const res = await fetch(input, { ...init, signal: AbortSignal.timeout(seconds * 1000) });
      // the body can stall after the headers: read here, under the same deadline
      const body = await res.arrayBuffer();
      return new Response(res.status === 204 || res.status === 304 ? null : body, { status: res.status, statusText: res.statusText, headers: res.headers });
    } catch (e) {
      throw (e as Error).name === 'TimeoutError' ? noAnswer() : e;
    }
  };
}

/** --timeout / $MAYFLY_TIMEOUT: whole seconds, 1 to MAX_TIMEOUT_S. */
function timeoutSeconds(v: string | undefined): number {
  if (v === undefined) return DEFAULT_TIMEOUT_S;
  const n = /^[0-9]{1,4}$/.test(v) ? Number(v) : NaN;
  if (!(n >= 1 && n <= MAX_TIMEOUT_S)) throw new UsageError(`--timeout ($MAYFLY_TIMEOUT): whole seconds from 1 to ${MAX_TIMEOUT_S}, got ${JSON.stringify(v)}`);
  return n;
}

/** Parses `args` with the common options plus the command's own; --help prints `help` and returns null. */
export function parse<O extends Options>(args: string[], own: O, help: string, io: Io, opts: { positionals?: number | [number, number] } = {}) {
  let parsed;
  try {
    parsed = parseArgs({ args, options: { ...COMMON_OPTIONS, ...own }, allowPositionals: true, strict: true });
  } catch (e) {
    throw new UsageError(`${(e as Error).message}`);
  }
  const values = parsed.values as Record<string, string | boolean | string[] | undefined>;
  if (values.help) {
    io.out(help);
    return null;
  }
  const [min, max] = typeof opts.positionals === 'number' ? [opts.positionals, opts.positionals] : (opts.positionals ?? [0, 0]);
  if (parsed.positionals.length < min || parsed.positionals.length > max)
    throw new UsageError(`expected ${min === max ? min : `${min} to ${max}`} argument(s), got ${parsed.positionals.length}`);
  if (parsed.positionals.some((a) => a.trim() === '')) throw new UsageError('an empty argument');
  const env = (k: string) => io.env[k] || undefined; // an empty variable counts as unset
  const str = (k: string) => (typeof values[k] === 'string' ? (values[k] as string) : undefined);
  const tokenFile = str('token-file') ?? env('MAYFLY_TOKEN_FILE');
  const url = (str('url') ?? env('MAYFLY_URL') ?? 'http://127.0.0.1:8080').replace(/\/+$/, '');
  const common: Common = {
    url,
    json: values.json === true,
    fetch: timedFetch(url, timeoutSeconds(str('timeout') ?? env('MAYFLY_TIMEOUT'))),
    io,
    attestation: () => {
      const direct = str('token') ?? str('attestation');
      if (direct) return direct;
      if (tokenFile) {
        try {
          return readFileSync(tokenFile, 'utf8').trim();
        } catch (e) {
          throw new UsageError(`--token-file: ${(e as Error).message}`);
        }
      }
      return env('MAYFLY_TOKEN');
    },
    credentials: {
      clientId: str('client-id') ?? env('MAYFLY_CLIENT_ID'),
      clientSecret: str('client-secret') ?? env('MAYFLY_CLIENT_SECRET'),
      operatorToken: str('operator-token') ?? env('MAYFLY_OPERATOR_TOKEN'),
    },
  };
  try {
    new URL(common.url);
  } catch {
    throw new UsageError(`--url: not a URL: ${common.url}`);
  }
  return { values, positionals: parsed.positionals, common };
}

/** A token argument, or standard input for `-`. */
export function tokenArg(arg: string | undefined, io: Io): string {
  const t = (arg === undefined || arg === '-' ? io.stdin() : arg).trim();
  if (!t) throw new UsageError('no token given (pass it as an argument, or - to read standard input)');
  return t;
}

/** The bearer for task calls: an operator token, else the caller's attestation. */
export function orchestratorBearer(c: Common): string {
  const b = c.credentials.operatorToken ?? c.attestation();
  if (!b) throw new UsageError('this needs --operator-token or an orchestrator attestation (--token, --token-file, $MAYFLY_TOKEN)');
  return b;
}

export function requireClientOrOperator(c: Common): void {
  const { clientId, clientSecret, operatorToken } = c.credentials;
  if (clientId !== undefined && clientSecret !== undefined) return;
  if (operatorToken) return;
  throw new UsageError('this needs --client-id and --client-secret, or --operator-token');
}

export function requireOperator(c: Common): string {
  if (!c.credentials.operatorToken) throw new UsageError('this needs --operator-token (or $MAYFLY_OPERATOR_TOKEN)');
  return c.credentials.operatorToken;
}

/** A broker error as the CLI reports it: bad credentials or an unreachable broker are configuration (2), refusals are 1. */
export function fromBrokerError(e: BrokerError, url: string): Error {
  if (e.status === 0) return new UsageError(`cannot reach the broker at ${url} (${e.description})`);
  if (e.status === 401) return new UsageError(`the broker did not accept the credentials: ${e.error}${e.description ? ` (${e.description})` : ''}`);
  return new Refused(`${e.error}${e.description ? `: ${e.description}` : ''} (HTTP ${e.status})`);
}

/** "in 4m 10s" / "3m ago". */
export function relative(ms: number, now = Date.now()): string {
  const d = Math.round((ms - now) / 1000);
  const a = Math.abs(d);
  const s = a >= 86400 ? `${Math.floor(a / 86400)}d ${Math.floor((a % 86400) / 3600)}h` : a >= 3600 ? `${Math.floor(a / 3600)}h ${Math.floor((a % 3600) / 60)}m` : a >= 60 ? `${Math.floor(a / 60)}m ${a % 60}s` : `${a}s`;
  return d >= 0 ? `in ${s}` : `${s} ago`;
}

/** Aligned "label  value" lines. */
export function table(rows: [string, string | undefined | null][]): string {
  const shown = rows.filter((r): r is [string, string] => r[1] !== undefined && r[1] !== null && r[1] !== '');
  const w = Math.max(...shown.map(([k]) => k.length));
  return shown.map(([k, v]) => `${k.padEnd(w)}  ${v}`).join('\n') + '\n';
}

/** A --ttl as the API takes it: a duration string (`30m`), or whole seconds as a number (`90`). */
export const ttlValue = (ttl: string): string | number => (/^[0-9]{1,9}$/.test(ttl) ? Number(ttl) : ttl);

export function printJson(io: Io, v: unknown): void {
  io.out(JSON.stringify(v, null, 2));
}
