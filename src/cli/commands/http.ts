/** The CLI's calls to the broker: one JSON request with the right credentials, errors as exit codes. */
import { authorization, BrokerError, jsonOrThrow, request } from '../../sdk/http.js';
import { fromBrokerError, UsageError, type Common } from './common.js';

export interface Call {
  method?: 'GET' | 'POST' | 'DELETE';
  /** `Bearer <this>`; else client/operator credentials when `clientAuth` is set. */
  bearer?: string;
  clientAuth?: boolean;
  json?: unknown;
  form?: Record<string, string | string[] | undefined>;
}

export async function call<T>(c: Common, path: string, o: Call = {}): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json' };
  if (o.bearer) headers.authorization = `Bearer ${o.bearer}`;
  else if (o.clientAuth) {
    const a = authorization(c.credentials);
    if (a) headers.authorization = a;
  }
  let body: string | undefined;
  if (o.json !== undefined) {
    headers['content-type'] = 'application/json';
    body = JSON.stringify(o.json);
  } else if (o.form) {
    headers['content-type'] = 'application/x-www-form-urlencoded';
    const f = new URLSearchParams();
    for (const [k, v] of Object.entries(o.form)) for (const x of Array.isArray(v) ? v : v === undefined ? [] : [v]) f.append(k, x);
    body = f.toString();
  }
  try {
    const res = await request(c.fetch, `${c.url}${path}`, {
      method: o.method ?? (body === undefined ? 'GET' : 'POST'),
      headers,
      ...(body !== undefined ? { body } : {}),
    });
    return await jsonOrThrow<T>(res);
  } catch (e) {
    if (e instanceof BrokerError) {
      // operators are never refused what they ask: a 403 to the operator token is the token refused (exit 2, as a 401 is)
      if (e.status === 403 && o.bearer !== undefined && o.bearer === c.credentials.operatorToken)
        throw new UsageError(`the broker did not accept the operator token: ${e.error}${e.description ? ` (${e.description})` : ''}`);
      throw fromBrokerError(e, c.url);
    }
    throw e;
  }
}
