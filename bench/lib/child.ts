/**
 * A server under test in its own Node process (so it never shares an event loop with the load
 * generator): TypeScript through the tsx loader, output kept in a bounded buffer for error reports,
 * stopped with SIGTERM (then SIGKILL) by its own pid only.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { waitForHttp } from './net.js';

export interface ChildSpec {
  name: string;
  /** Script path relative to the repository root, then its arguments. */
  args: string[];
  /** Extra node flags, after `--import tsx` (so a TypeScript preload works). */
  nodeFlags?: string[];
  env?: Record<string, string>;
  /** GET this URL until it answers 2xx. */
  readyUrl: string;
  readyTimeoutMs?: number;
}

export interface Child {
  name: string;
  pid: number;
  /** The last few KB of the child's stdout+stderr. */
  output(): string;
  signal(sig: NodeJS.Signals): void;
  stop(): Promise<void>;
}

const KEEP_BYTES = 16 * 1024;

export async function startChild(spec: ChildSpec, cwd: string): Promise<Child> {
  const proc: ChildProcess = spawn(process.execPath, ['--import', 'tsx', ...(spec.nodeFlags ?? []), ...spec.args], {
    cwd,
    env: { ...process.env, ...spec.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const keep = (d: Buffer) => {
    out = (out + d.toString()).slice(-KEEP_BYTES);
  };
  proc.stdout?.on('data', keep);
  proc.stderr?.on('data', keep);
  let exited = proc.exitCode !== null;
  const exit = new Promise<void>((r) => proc.once('exit', () => ((exited = true), r())));

  const child: Child = {
    name: spec.name,
    pid: proc.pid ?? -1,
    output: () => out,
    signal: (sig) => {
      if (!exited) proc.kill(sig);
    },
    stop: async () => {
      if (exited) return;
      proc.kill('SIGTERM');
      const gone = await Promise.race([exit.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 8000))]);
      if (!gone && !exited) {
        proc.kill('SIGKILL');
        await exit;
      }
    },
  };
  try {
    await waitForHttp(spec.readyUrl, spec.readyTimeoutMs ?? 20_000, () => !exited);
  } catch (e) {
    await child.stop();
    throw new Error(`${spec.name} did not start: ${(e as Error).message}\n--- ${spec.name} output ---\n${out}`);
  }
  return child;
}
