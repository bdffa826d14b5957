/**
 * One resource server in its own process: `createVerifier({feed: 'stream'})` from the SDK (the same
 * build the broker runs from), driven by the bench over IPC (see protocol.ts).
 *
 * When to check: the verifier has no "event applied" callback, but it takes a `fetch`; the one given
 * here hands the SSE body through unchanged and notes each chunk's arrival. The verifier's stream loop
 * applies a chunk's events synchronously right after its `read()` resolves (a microtask), so a check
 * scheduled with `setImmediate` at the chunk runs after the mirror has applied it: the first refusal
 * is observed within one verify() call of the moment it became possible, without burning a core per
 * verifier. A backstop timer (`pollMs`) verifies as well while armed, in case anything else changes
 * the answer; the report says which path saw each refusal.
 *
 *   node --import tsx bench/feed/verifier-child.ts '<ChildConfig JSON>'
 */
import { wallNow, type ChildConfig, type DetectedBy, type FromChild, type ToChild } from './protocol.js';

type Sdk = typeof import('../../src/sdk/index.js');
type FetchLike = import('../../src/sdk/index.js').FetchLike;

const cfg = JSON.parse(process.argv[2] ?? '') as ChildConfig;
const send = (m: FromChild) => void process.send?.(m);
process.on('disconnect', () => process.exit(0)); // the bench went away: never linger

interface Armed {
  trial: number;
  token: string;
  taskId: string;
  timer: NodeJS.Timeout | undefined;
  busy: boolean;
  again: DetectedBy | null;
  done: boolean;
  checks: number;
  chunkAt: number | null;
  eventId: string | null;
}
let armed: Armed | undefined;
let watching: { id: number; marker: string } | undefined;
const decoder = new TextDecoder();

/** The SSE message (blank-line separated) mentioning the task, and its `id:` line. */
function noteChunk(bytes: Uint8Array, at: number): void {
  const w = watching;
  if (w && decoder.decode(bytes).includes(w.marker)) {
    watching = undefined;
    send({ type: 'seen', index: cfg.index, id: w.id, at });
  }
  const a = armed;
  if (!a || a.done) return;
  if (a.chunkAt === null) {
    const text = decoder.decode(bytes);
    const i = text.indexOf(a.taskId);
    if (i >= 0) {
      a.chunkAt = at;
      const start = text.lastIndexOf('\n\n', i);
      const msg = text.slice(start < 0 ? 0 : start + 2, text.indexOf('\n\n', i) < 0 ? undefined : text.indexOf('\n\n', i));
      a.eventId = /^id: ?(\d+-\d+)$/m.exec(msg)?.[1] ?? null;
    }
  }
  setImmediate(() => void check(a, 'chunk'));
}

const observingFetch: FetchLike = async (input, init) => {
  const res = await fetch(input, init);
  const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
  if (!url.includes('/v1/revocations/stream') || !res.body) return res;
  const reader = res.body.getReader();
  const body = new ReadableStream<Uint8Array>(
    {
      async pull(ctrl) {
        const { value, done } = await reader.read();
        if (done) return ctrl.close();
        noteChunk(value, wallNow());
        ctrl.enqueue(value);
      },
      cancel: (reason) => reader.cancel(reason),
    },
    { highWaterMark: 0 },
  );
  return new Response(body, { status: res.status, statusText: res.statusText, headers: res.headers });
};

const sdk = (await import(cfg.sdkUrl)) as Sdk;
const verifier = sdk.createVerifier({
  issuer: cfg.issuer,
  clientId: cfg.clientId,
  clientSecret: cfg.clientSecret,
  feed: 'stream',
  fetch: observingFetch,
});
const opts = { audience: cfg.audience };

async function check(a: Armed, by: DetectedBy): Promise<void> {
  if (a.done || armed !== a) return;
  if (a.busy) {
    a.again ??= by; // a check in flight may have started before the event: run once more after it
    return;
  }
  a.busy = true;
  const started = wallNow();
  const r = await verifier.verify(a.token, opts);
  const at = wallNow();
  a.busy = false;
  a.checks++;
  if (a.done || armed !== a) return;
  if (!r.ok) {
    a.done = true;
    clearInterval(a.timer);
    send({
      type: 'refused',
      index: cfg.index,
      trial: a.trial,
      at,
      checkStartedAt: started,
      code: r.code,
      reason: r.code === 'revoked' ? r.reason : null,
      by,
      chunkAt: a.chunkAt,
      eventId: a.eventId,
      checks: a.checks,
    });
    return;
  }
  if (a.again) {
    const next = a.again;
    a.again = null;
    void check(a, next);
  }
}

function disarm(): void {
  if (armed) {
    armed.done = true;
    clearInterval(armed.timer);
  }
  armed = undefined;
}

process.on('message', (raw: unknown) => {
  const m = raw as ToChild;
  switch (m.type) {
    case 'ping':
      send({ type: 'pong', index: cfg.index, id: m.id, at: wallNow() });
      break;
    case 'arm': {
      disarm();
      void verifier.verify(m.token, opts).then((r) => {
        if (!r.ok) {
          send({ type: 'armed', index: cfg.index, trial: m.trial, ok: false, code: r.code });
          return;
        }
        const a: Armed = { trial: m.trial, token: m.token, taskId: m.taskId, timer: undefined, busy: false, again: null, done: false, checks: 0, chunkAt: null, eventId: null };
        if (cfg.pollMs > 0) a.timer = setInterval(() => void check(a, 'poll'), cfg.pollMs);
        armed = a;
        send({ type: 'armed', index: cfg.index, trial: m.trial, ok: true, code: null });
      });
      break;
    }
    case 'probe': {
      const a = armed;
      if (!a || a.trial !== m.trial) {
        send({ type: 'probe', index: cfg.index, trial: m.trial, at: wallNow(), ok: false, code: 'not_armed' });
        break;
      }
      void verifier.verify(a.token, opts).then((r) => {
        send({ type: 'probe', index: cfg.index, trial: m.trial, at: wallNow(), ok: r.ok, code: r.ok ? null : r.code });
        if (!r.ok) void check(a, 'probe');
      });
      break;
    }
    case 'disarm':
      if (armed?.trial === m.trial) disarm();
      break;
    case 'watch':
      watching = { id: m.id, marker: m.marker };
      send({ type: 'watching', index: cfg.index, id: m.id });
      break;
    case 'status':
      send({ type: 'status', index: cfg.index, status: verifier.status() });
      break;
  }
});

try {
  await verifier.start({ timeoutMs: 15_000 });
  send({ type: 'ready', index: cfg.index, pid: process.pid });
} catch (e) {
  process.stderr.write(`verifier ${cfg.index}: ${(e as Error).message}\n`);
  send({ type: 'fatal', index: cfg.index, message: (e as Error).message });
  process.exitCode = 1;
  verifier.close();
  process.disconnect?.();
}
