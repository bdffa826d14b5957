/**
 * A Server-Sent Events parser (WHATWG HTML §9.2.6): lines end in LF, CRLF or CR; `event`, `data`,
 * `id`, `retry` fields; `:` starts a comment (heartbeats); a blank line dispatches the message.
 */
export interface SseMessage {
  event: string;
  data: string;
  /** The last event id seen so far (sticky across messages, as the spec says). */
  lastEventId: string;
}

/** A comment line (`:` first: the broker's heartbeats), in order with the messages around it. */
export interface SseComment {
  comment: string;
}

export class SseParser {
  private buf = '';
  private event = '';
  private data: string[] = [];
  private lastId = '';
  /** The server's `retry:` advice, if any (ms). */
  retryMs: number | undefined;

  /** Messages and, with `withComments`, comment lines, in the order they came. */
  push(chunk: string, withComments?: false): SseMessage[];
  push(chunk: string, withComments: true): Array<SseMessage | SseComment>;
  push(chunk: string, withComments = false): Array<SseMessage | SseComment> {
    const out: Array<SseMessage | SseComment> = [];
    this.buf += chunk;
    let start = 0;
    for (let i = 0; i < this.buf.length; i++) {
      const ch = this.buf.charCodeAt(i);
      if (ch !== 10 && ch !== 13) continue;
      // a CR at the very end may be the first half of CRLF: wait for the next chunk
      if (ch === 13 && i === this.buf.length - 1) break;
      this.line(this.buf.slice(start, i), out, withComments);
      if (ch === 13 && this.buf.charCodeAt(i + 1) === 10) i++;
      start = i + 1;
    }
    this.buf = this.buf.slice(start);
    return out;
  }

  private line(line: string, out: Array<SseMessage | SseComment>, withComments: boolean): void {
    if (line === '') {
      if (this.data.length > 0) out.push({ event: this.event || 'message', data: this.data.join('\n'), lastEventId: this.lastId });
      this.event = '';
      this.data = [];
      return;
    }
    if (line.charCodeAt(0) === 58) {
      if (withComments) out.push({ comment: line.slice(1).trim() });
      return;
    }
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.charCodeAt(0) === 32) value = value.slice(1);
    switch (field) {
      case 'event':
        this.event = value;
        break;
      case 'data':
        this.data.push(value);
        break;
      case 'id':
        if (!value.includes('\u0000')) this.lastId = value;
        break;
      case 'retry':
        if (/^\d+$/.test(value)) this.retryMs = Number(value);
        break;
    }
  }
}
