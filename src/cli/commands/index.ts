/** The client-side subcommands of `mayfly`. Each module loads only when its command runs (a fast CLI). */
import type { Command } from './command.js';

export const commands: readonly Command[] = [
  { name: 'task', synopsis: 'task open|show|close', summary: 'open, show or close a task', load: () => import('./task.js') },
  { name: 'token', synopsis: 'token --task ID', summary: 'exchange your attestation for a task-bound access token (or --decode one)', load: () => import('./token.js') },
  { name: 'cert', synopsis: 'cert --task ID [--out DIR]', summary: 'an X509-SVID for the task: key made here, certificate, chain and trust bundle written', load: () => import('./cert.js') },
  { name: 'introspect', synopsis: 'introspect TOKEN', summary: 'ask the broker whether a token is active', load: () => import('./introspect.js') },
  { name: 'revoke', synopsis: 'revoke token|task|identity|principal|certificate', summary: 'make credentials inactive', load: () => import('./revoke.js') },
  { name: 'inspect', synopsis: 'inspect TOKEN', summary: 'explain why a token is or is not active', load: () => import('./inspect.js') },
  { name: 'keys', synopsis: 'keys [list|rotate]', summary: 'the signing keys in keys.dir', load: () => import('./keys.js') },
  { name: 'join-token', synopsis: 'join-token create SPIFFE_ID [--ttl 10m]', summary: 'a one-time join token for a workload registered with attestor: join (operator)', load: () => import('./join-token.js') },
];

export const commandByName = (name: string) => commands.find((c) => c.name === name);
