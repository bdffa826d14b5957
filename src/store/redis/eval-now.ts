/**
 * A script sent as a plain EVALSHA command, at once: the calls a TurnBatch already gathers per
 * event-loop turn (the certificates' records, the audit events).
 *
 * ioredis's `defineCommand` would add two costs:
 * - **Auto-pipelining.** It queues a command and writes it at a setImmediate. Queued from the
 *   TurnBatch's own setImmediate, that runs only after the next turn's I/O. `sendCommand` writes at once.
 * - **Old-generation growth.** Its script command keeps a closure over itself (its NOSCRIPT handling,
 *   set as each command is written). With it, each scavenge of a worker under the certificate load
 *   promoted ~450 KB. In a synthetic load (32 callers, each 120 µs of CPU then one script call batched
 *   per turn; `--trace-gc-nvp`), the same script promoted 575 KB per scavenge through `defineCommand`
 *   and 66 KB as a plain EVALSHA; 66 KB too with the closure alone removed. Promoted bytes are what the
 *   mark-compacts (6-12 ms pauses) then collect.
 *
 * Like ioredis, a server that does not hold the script yet (NOSCRIPT: first use, a restart, SCRIPT
 * FLUSH) gets it with EVAL; NOSCRIPT means nothing ran, so sending it again writes nothing twice.
 */
import { createHash } from 'node:crypto';
import { Command, type Cluster, type Redis } from 'ioredis';

export interface EvalScript {
  lua: string;
  sha: string;
}

export const evalScript = (lua: string): EvalScript => ({ lua, sha: createHash('sha1').update(lua).digest('hex') });

/** `args`: the key count, the keys, then the arguments (as EVAL takes them). */
export function evalNow(r: Redis | Cluster, script: EvalScript, args: ReadonlyArray<string | number>): Promise<unknown> {
  const send = (name: 'evalsha' | 'eval', body: string) => r.sendCommand(new Command(name, [body, ...args], { replyEncoding: 'utf8' })) as Promise<unknown>;
  return send('evalsha', script.sha).catch((e: unknown) => {
    if (!(e instanceof Error) || !e.message.startsWith('NOSCRIPT')) throw e;
    return send('eval', script.lua);
  });
}
