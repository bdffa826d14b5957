/**
 * A server under test in its own Node process (so it never shares an event loop with the load
 * generator): TypeScript through the tsx loader, output kept in a bounded buffer for error reports,
 * stopped with SIGTERM (then SIGKILL) by its own pid only. A child that serves no HTTP can instead open
 * an IPC channel and announce itself with a `{type: 'ready'}` message.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { join } from 'node:path';
import { waitForHttp } from './net.js';

export interface ChildSpec {
  name: string;
  /** An executable to run instead of Node (e.g. a baseline written in another language); `nodeFlags` are then ignored. */
  command?: string;
  /** Script path relative to the repository root, then its arguments (with `command`: that executable's arguments). */
  args: string[];
  /** Extra node flags, after `--import tsx` (so a TypeScript preload works). */
  nodeFlags?: string[];
  env?: Record<string, string>;
  /** GET this URL until it answers 2xx (or any status `readyStatus` takes). */
  readyUrl?: string;
  readyStatus?: (status: number) => boolean;
  /**
   * Open an IPC channel (`process.send` in the child; `Child.send` / `Child.onMessage` here). Without a
   * `readyUrl`, the child is ready at its first IPC message `{type: 'ready'}`.
   */
  ipc?: boolean;
  readyTimeoutMs?: number;
}

export interface Child {
  name: string;
  pid: number;
  /** The last few KB of the child's stdout+stderr. */
  output(): string;
  signal(sig: NodeJS.Signals): void;
  stop(): Promise<void>;
  /** Sends a message over the IPC channel (`spec.ipc` only); false once the child is gone. */
  send(message: unknown): boolean;
  /** Subscribes to the child's IPC messages; returns the unsubscribe. */
  onMessage(fn: (message: unknown) => void): () => void;
}

const KEEP_BYTES = 16 * 1024;

export async function startChild(spec: ChildSpec, cwd: string): Promise<Child> {
  if (spec.readyUrl === undefined && !spec.ipc) throw new Error(`${spec.name}: a child needs a readyUrl or an IPC channel to tell when it is ready`);
  const argv = spec.command ? spec.args : ['--import', 'tsx', ...(spec.nodeFlags ?? []), ...spec.args];
  const proc: ChildProcess = spawn(spec.command ?? process.execPath, argv, {
    cwd,
    env: { ...process.env, ...spec.env },
    stdio: spec.ipc ? ['ignore', 'pipe', 'pipe', 'ipc'] : ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const keep = (d: Buffer) => {
    out = (out + d.toString()).slice(-KEEP_BYTES);
  };
  proc.stdout?.on('data', keep);
  proc.stderr?.on('data', keep);
  // BENCH_CHILD_LOG=DIR: also the whole output of each child, in DIR/<name>.log (for --trace-gc and the like)
  const logDir = process.env.BENCH_CHILD_LOG;
  if (logDir) {
    const file = createWriteStream(join(logDir, `${spec.name.replace(/[^\w.-]+/g, '_')}.log`), { flags: 'a' });
    proc.stdout?.pipe(file);
    proc.stderr?.pipe(file);
  }
  let exited = proc.exitCode !== null;
  const exit = new Promise<void>((r) => {
    proc.once('exit', () => ((exited = true), r()));
    // a process that could not be spawned (e.g. command not found) may never emit 'exit'
    proc.once('error', (e) => {
      keep(Buffer.from(`spawn failed: ${e.message}\n`));
      if (proc.pid === undefined) {
        exited = true;
        r();
      }
    });
  });

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
    send: (message) => {
      if (!proc.send) throw new Error(`${spec.name}: started without an IPC channel`);
      if (exited || !proc.connected) return false;
      return proc.send(message as Parameters<NonNullable<ChildProcess['send']>>[0]);
    },
    onMessage: (fn) => {
      proc.on('message', fn);
      return () => void proc.off('message', fn);
    },
  };
  try {
    if (spec.readyUrl !== undefined) await waitForHttp(spec.readyUrl, spec.readyTimeoutMs ?? 20_000, () => !exited, spec.readyStatus);
    else await waitForReadyMessage(proc, spec.readyTimeoutMs ?? 20_000, exit);
  } catch (e) {
    await child.stop();
    throw new Error(`${spec.name} did not start: ${(e as Error).message}\n--- ${spec.name} output ---\n${out}`);
  }
  return child;
}

/** Resolves at the child's first `{type: 'ready'}` IPC message; rejects on exit or after `timeoutMs`. */
function waitForReadyMessage(proc: ChildProcess, timeoutMs: number, exit: Promise<void>): Promise<void> {
  return new Promise((resolve, reject) => {
    const done = (err?: Error) => {
      clearTimeout(timer);
      proc.off('message', onMessage);
      if (err) reject(err);
      else resolve();
    };
    const onMessage = (m: unknown) => {
      if (typeof m === 'object' && m !== null && (m as { type?: unknown }).type === 'ready') done();
    };
    const timer = setTimeout(() => done(new Error(`no ready message after ${timeoutMs} ms`)), timeoutMs);
    proc.on('message', onMessage);
    void exit.then(() => done(new Error('process exited before it was ready')));
  });
}
