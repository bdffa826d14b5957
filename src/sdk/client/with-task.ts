/**
 * `withTask(spec, fn)`: open a task, run `fn`, close the task whatever happens: `fn` returns or throws,
 * the caller's AbortSignal fires (the task closes at once, without waiting for `fn`), or the process
 * gets SIGINT/SIGTERM (the task closes, then the signal takes its default course unless someone else
 * listens for it). Signal handlers exist only while the task is open.
 */
import type { TaskApi, TaskClosed, TaskSpec, TaskView } from './tasks.js';

export interface WithTaskOptions {
  signal?: AbortSignal;
  /** Close the task on SIGINT/SIGTERM (default true). */
  handleSignals?: boolean;
}

export async function withTask<T>(
  tasks: TaskApi,
  onClosed: (taskId: string) => void,
  spec: TaskSpec,
  fn: (task: TaskView, signal: AbortSignal) => Promise<T>,
  o: WithTaskOptions = {},
): Promise<T> {
  o.signal?.throwIfAborted();
  const task = await tasks.open(spec);
  const ac = new AbortController();
  let closing: Promise<TaskClosed | Error> | undefined;
  const close = () =>
    (closing ??= (onClosed(task.task_id), tasks.close(task.task_id)).then(
      (r) => r,
      (e: unknown) => (e instanceof Error ? e : new Error(String(e))),
    ));

  const onAbort = () => {
    ac.abort(o.signal?.reason);
    void close();
  };
  o.signal?.addEventListener('abort', onAbort, { once: true });
  if (o.signal?.aborted) onAbort(); // aborted while the task was being opened

  const handlers = new Map<NodeJS.Signals, () => void>();
  let signalled = false;
  const unhook = () => {
    for (const [sig, h] of handlers) process.removeListener(sig, h);
    handlers.clear();
  };
  if (o.handleSignals !== false) {
    for (const sig of ['SIGINT', 'SIGTERM'] as const) {
      const h = () => {
        signalled = true;
        ac.abort(new Error(`interrupted by ${sig}`));
        void close().finally(() => {
          unhook();
          // let the signal do what it would have done without us
          if (process.listenerCount(sig) === 0) process.kill(process.pid, sig);
        });
      };
      handlers.set(sig, h);
      process.once(sig, h);
    }
  }

  const aborted = new Promise<never>((_, reject) => {
    if (ac.signal.aborted) reject(ac.signal.reason);
    ac.signal.addEventListener('abort', () => reject(ac.signal.reason), { once: true });
  });
  aborted.catch(() => undefined);

  let result: T;
  try {
    result = await Promise.race([fn(task, ac.signal), aborted]);
  } catch (err) {
    o.signal?.removeEventListener('abort', onAbort);
    if (!signalled) unhook(); // a signal handler in progress unhooks itself once the task is closed
    const closed = await close();
    if (closed instanceof Error) throw new AggregateError([err, closed], `task ${task.task_id}: the work failed and closing the task failed too`);
    throw err;
  }
  o.signal?.removeEventListener('abort', onAbort);
  unhook();
  const closed = await close();
  if (closed instanceof Error) throw closed;
  return result;
}
