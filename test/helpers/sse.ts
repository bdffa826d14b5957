/** A minimal Server-Sent Events reader over fetch, for tests of the revocation stream. */
export interface SseMessage {
  event: string;
  id?: string;
  data: string;
}

export interface SseConnection {
  status: number;
  /** The next message (comments such as heartbeats are counted in `comments`), or null at end of stream. */
  next(timeoutMs?: number): Promise<SseMessage | null>;
  comments: number;
  close(): void;
}

export async function openSse(url: string, headers: Record<string, string> = {}): Promise<SseConnection> {
  const ac = new AbortController();
  const res = await fetch(url, { headers: { accept: 'text/event-stream', ...headers }, signal: ac.signal });
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let buf = '';
  const queue: SseMessage[] = [];
  let ended = false;
  // a read left pending by a call that timed out is the next call's: its chunk is never dropped
  let pending: ReturnType<typeof reader.read> | undefined;
  const conn: SseConnection = {
    status: res.status,
    comments: 0,
    close: () => ac.abort(),
    async next(timeoutMs = 5000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        if (queue.length) return queue.shift()!;
        if (ended) return null;
        const left = deadline - Date.now();
        if (left <= 0) throw new Error('no SSE message in time');
        pending ??= reader.read();
        let timer: NodeJS.Timeout | undefined;
        const chunk = await Promise.race([pending, new Promise<'timeout'>((r) => (timer = setTimeout(() => r('timeout'), left)))]);
        clearTimeout(timer);
        if (chunk === 'timeout') continue;
        pending = undefined;
        if (chunk.done) {
          ended = true;
          continue;
        }
        buf += decoder.decode(chunk.value, { stream: true });
        let i: number;
        while ((i = buf.indexOf('\n\n')) !== -1) {
          const block = buf.slice(0, i);
          buf = buf.slice(i + 2);
          const msg: SseMessage = { event: 'message', data: '' };
          let isComment = true;
          const data: string[] = [];
          for (const line of block.split('\n')) {
            if (line.startsWith(':')) continue;
            isComment = false;
            const [k, ...rest] = line.split(':');
            const v = rest.join(':').replace(/^ /, '');
            if (k === 'event') msg.event = v;
            else if (k === 'id') msg.id = v;
            else if (k === 'data') data.push(v);
          }
          if (isComment) conn.comments++;
          else queue.push({ ...msg, data: data.join('\n') });
        }
      }
    },
  };
  return conn;
}
