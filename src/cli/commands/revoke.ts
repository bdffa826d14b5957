/** `mayfly revoke token|task|identity|principal`: make credentials inactive. */
import { COMMON_HELP, EXIT, parse, printJson, requireClientOrOperator, requireOperator, tokenArg, UsageError, type Io } from './common.js';
import { call } from './http.js';
import { closeTask } from './task.js';

const HELP = `usage: mayfly revoke token [TOKEN | -]          one access token (RFC 7009; client or operator)
       mayfly revoke task TASK_ID                  close the task: all its credentials (orchestrator or operator)
       mayfly revoke identity SPIFFE_ID [--unlock] lock an identity: all its credentials, in every task, and no new
                                                   ones until --unlock; those issued before stay inactive (operator)
       mayfly revoke principal PRINCIPAL           every task opened for the principal until now counts as closed
                                                   (operator), e.g. user:alice@example.com
       mayfly revoke certificate SERIAL            one X.509-SVID, by serial in hex (client or operator)

${COMMON_HELP}`;

async function revokeToken(args: string[], io: Io): Promise<number> {
  const p = parse(args, {}, HELP, io, { positionals: [0, 1] });
  if (!p) return EXIT.ok;
  requireClientOrOperator(p.common);
  await call(p.common, '/oauth/revoke', { clientAuth: true, form: { token: tokenArg(p.positionals[0], io) } });
  // RFC 7009: the same answer whether or not the token was one of ours
  if (p.common.json) printJson(io, { revoked: true });
  else io.out('revoked (if it was a token of this broker, it is inactive now)');
  return EXIT.ok;
}

async function revokeTask(args: string[], io: Io): Promise<number> {
  const p = parse(args, {}, HELP, io, { positionals: 1 });
  if (!p) return EXIT.ok;
  return closeTask(p.common, p.positionals[0]!);
}

async function revokeIdentity(args: string[], io: Io): Promise<number> {
  const p = parse(args, { unlock: { type: 'boolean' } }, HELP, io, { positionals: 1 });
  if (!p) return EXIT.ok;
  const id = p.positionals[0]!;
  const unlock = p.values.unlock === true;
  const r = await call<{ spiffe_id: string; locked: boolean; revoked_before: string | null }>(p.common, `/v1/identities/${encodeURIComponent(id)}/lock`, {
    method: unlock ? 'DELETE' : 'POST',
    bearer: requireOperator(p.common),
  });
  if (p.common.json) printJson(io, r);
  else
    io.out(
      unlock
        ? `unlocked ${r.spiffe_id}: new credentials may be issued; those issued before ${r.revoked_before ?? 'the lock'} stay inactive`
        : `locked ${r.spiffe_id}: every credential issued up to ${r.revoked_before} is inactive, and no new ones until unlocked`,
    );
  return EXIT.ok;
}

async function revokePrincipal(args: string[], io: Io): Promise<number> {
  const p = parse(args, {}, HELP, io, { positionals: 1 });
  if (!p) return EXIT.ok;
  const principal = p.positionals[0]!;
  const r = await call<{ principal: string; revoked_before: string }>(p.common, `/v1/principals/${encodeURIComponent(principal)}/revoke`, {
    method: 'POST',
    bearer: requireOperator(p.common),
  });
  if (p.common.json) printJson(io, r);
  else io.out(`revoked ${r.principal}: every task opened for it up to ${r.revoked_before} counts as closed`);
  return EXIT.ok;
}

async function revokeCertificate(args: string[], io: Io): Promise<number> {
  const p = parse(args, {}, HELP, io, { positionals: 1 });
  if (!p) return EXIT.ok;
  requireClientOrOperator(p.common);
  const serial = p.positionals[0]!.toLowerCase().replace(/:/g, '');
  if (!/^[0-9a-f]{1,40}$/.test(serial)) throw new UsageError('SERIAL: the certificate serial in hex');
  const r = await call<{ serial: string; revoked_at: string }>(p.common, `/v1/certificates/${serial}/revoke`, { method: 'POST', clientAuth: true });
  if (p.common.json) printJson(io, r);
  else io.out(`revoked certificate ${r.serial} (at ${r.revoked_at}): listed in the CRL, revoked over OCSP and the feed`);
  return EXIT.ok;
}

export async function run([sub, ...rest]: string[], io: Io): Promise<number> {
  switch (sub) {
    case 'token':
      return revokeToken(rest, io);
    case 'task':
      return revokeTask(rest, io);
    case 'identity':
      return revokeIdentity(rest, io);
    case 'principal':
      return revokePrincipal(rest, io);
    case 'certificate':
      return revokeCertificate(rest, io);
    case '--help':
    case '-h':
    case 'help':
      io.out(HELP);
      return EXIT.ok;
    case undefined:
      throw new UsageError(`what? token, task, identity, principal or certificate`);
    default:
      throw new UsageError(`unknown kind "${sub}"`);
  }
}

