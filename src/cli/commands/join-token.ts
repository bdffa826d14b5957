/** `mayfly join-token create`: one-time join tokens for new workloads are not implemented by the broker yet. */
import { EXIT, type Io } from './common.js';

const HELP = `usage: mayfly join-token create

Join tokens (one-time credentials that let a new workload register) are not supported yet: the broker
has no join-token endpoint. Attest workloads with an attestor (Kubernetes, GitHub Actions, OIDC) instead.
`;

export async function run(args: string[], io: Io): Promise<number> {
  if (args.includes('--help') || args.includes('-h')) {
    io.out(HELP);
    return EXIT.ok;
  }
  io.err('mayfly: join-token: not supported yet (the broker has no join-token endpoint)');
  return EXIT.usage;
}

