/** `mayfly cert`: an X509-SVID for a task: a fresh P-256 key here, its CSR to the broker, the files written. */
import { accessSync, constants, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { newKeyAndCsr } from '../../sdk/client/csr.js';
import type { IssuedSvid } from '../../issue/certificate.js';
import { agentAttestation, COMMON_HELP, EXIT, parse, printJson, UsageError, type Io } from './common.js';
import { call } from './http.js';

const HELP = `usage: mayfly cert --task TASK_ID [--out DIR] [options]

Asks the broker for an X509-SVID for the task (POST /v1/certificates): a fresh EC P-256 key is made
here and never leaves this machine; its certificate request goes with your attestation (--token,
--token-file, $MAYFLY_TOKEN, or --dev-workload NAME against a dev broker). Your registration needs
certificates: true. The certificate lives no longer than the task, and is revoked when the task ends.

Writes into --out (default: the current directory), key file mode 0600:
  svid.pem         the certificate, then the chain up to (not including) the root
  svid-key.pem     the private key (PKCS#8)
  bundle.pem       the trust anchors (GET /v1/ca/bundle), for the peers that check it

options:
  --task ID            the task (required)
  --out DIR            where to write the files (default .)
  --dev-workload NAME  get the attestation from the dev attestor (POST /dev/attest; dev mode only)

output: serial, SPIFFE ID, expiry and the files written (--json: the broker's answer plus the files)

${COMMON_HELP}`;

const OWN = {
  task: { type: 'string' },
  out: { type: 'string' },
  'dev-workload': { type: 'string' },
} as const;


function writableDirectory(dir: string): void {
  try {
    if (!statSync(dir).isDirectory()) throw new UsageError(`--out ${dir}: not a directory`);
    accessSync(dir, constants.W_OK);
  } catch (e) {
    if (e instanceof UsageError) throw e;
    throw new UsageError(`--out ${dir}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such directory' : 'not writable'}`);
  }
}

/** A new file with `mode` renamed over `path`: an existing file's looser mode never carries over to a key. */
function replaceFile(path: string, content: string, mode: number): void {
  const tmp = `${path}.tmp-${process.pid}`;
  try {
    writeFileSync(tmp, content, { mode, flag: 'wx' });
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw new UsageError(`cannot write ${path} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
}

export async function run(args: string[], io: Io): Promise<number> {
  const p = parse(args, OWN, HELP, io);
  if (!p) return EXIT.ok;
  const v = p.values as { task?: string; out?: string; 'dev-workload'?: string };
  if (!v.task) throw new UsageError('--task is required');
  const dir = v.out ?? '.';
  // before asking: a certificate issued for a key that cannot be written is a certificate nobody holds
  writableDirectory(dir);
  const attestation = await agentAttestation(p.common, v['dev-workload'], 'cert');
  const k = newKeyAndCsr();
  const r = await call<IssuedSvid>(p.common, '/v1/certificates', { bearer: attestation, json: { task_id: v.task, csr: k.csrPem } });
  const bundle = await p.common.fetch(`${p.common.url}/v1/ca/bundle`).then((res) => (res.ok ? res.text() : ''));
  const files = { certificate: join(dir, 'svid.pem'), key: join(dir, 'svid-key.pem'), bundle: join(dir, 'bundle.pem') };
  replaceFile(files.key, k.keyPem, 0o600);
  replaceFile(files.certificate, [r.certificate, ...r.chain].map((x) => (x.endsWith('\n') ? x : `${x}\n`)).join(''), 0o644);
  if (bundle) replaceFile(files.bundle, bundle, 0o644);
  if (p.common.json) printJson(io, { ...r, files });
  else
    io.out(
      [
        `serial     ${r.serial}`,
        `spiffe_id  ${r.spiffe_id}`,
        `task       ${r.task_id}`,
        `not_after  ${r.not_after}`,
        `wrote      ${files.certificate}, ${files.key}${bundle ? `, ${files.bundle}` : ''}`,
      ].join('\n'),
    );
  return EXIT.ok;
}
