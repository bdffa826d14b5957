/**
 * What the SDK's HTTP calls share: credentials for the broker's client/operator endpoints, the error
 * a broker answer becomes, and reading a JSON body.
 */

export type FetchLike = (input: string | URL | Request, init?: RequestInit) => Promise<Response>;

/** Credentials for introspection, revocation and the revocation feed. */
export interface BrokerCredentials {
  clientId?: string;
  clientSecret?: string;
  operatorToken?: string;
}

/** HTTP Basic for a configured client (RFC 6749 §2.3.1: form-encoded, then base64), else operator Bearer. */
export function authorization(c: BrokerCredentials): string | undefined {
  if (c.clientId !== undefined && c.clientSecret !== undefined) {
    const enc = (s: string) => encodeURIComponent(s);
    return `Basic ${Buffer.from(`${enc(c.clientId)}:${enc(c.clientSecret)}`).toString('base64')}`;
  }
  if (c.operatorToken) return `Bearer ${c.operatorToken}`;
  return undefined;
}

/** A refusal or failure from the broker: its HTTP status and RFC error body. */
export class BrokerError extends Error {
  override name = 'BrokerError';
  constructor(
    readonly status: number,
    readonly error: string,
    readonly description: string,
  ) {
    // status 0: no HTTP answer at all (unreachable, timed out)
    super(`${status ? `${status} ` : ''}${error}${description ? `: ${description}` : ''}`);
  }

  /** 5xx, 429 and network-level failures are worth retrying; 4xx refusals are not. */
  get retryable(): boolean {
    return this.status === 0 || this.status === 429 || this.status >= 500;
  }
}

/** Reads a JSON answer; any non-2xx becomes a BrokerError with the broker's `{error, error_description}`. */
export async function jsonOrThrow<T>(res: Response): Promise<T> {
  const text = await res.text();
  let body: unknown;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    body = undefined;
  }
  if (!res.ok) {
    const b = (body ?? {}) as { error?: unknown; error_description?: unknown };
    throw new BrokerError(
      res.status,
      typeof b.error === 'string' ? b.error : `http_${res.status}`,
      typeof b.error_description === 'string' ? b.error_description : text.slice(0, 200),
    );
  }
  return body as T;
}

/** fetch, with a network failure turned into a retryable BrokerError (status 0). */
export async function request(f: FetchLike, url: string, init: RequestInit): Promise<Response> {
  try {
    return await f(url, init);
  } catch (e) {
    if ((e as Error).name === 'AbortError' || (e as Error).name === 'TimeoutError') throw e;
    const cause = (e as { cause?: { code?: string; message?: string } }).cause;
    throw new BrokerError(0, 'unreachable', `${url}: ${cause?.code ?? cause?.message ?? (e as Error).message}`);
  }
}

/** Joins a base URL (with or without a trailing slash) and an absolute path. */
export function endpoint(base: string, path: string): string {
  return base.replace(/\/+$/, '') + path;
}
