/** RFC 7662 introspection at the broker: the online answer when the mirror cannot be trusted. */
import { authorization, endpoint, jsonOrThrow, request, type BrokerCredentials, type FetchLike } from '../http.js';

export interface Introspector {
  /** true/false from the broker; throws when the broker cannot answer. */
  active(token: string): Promise<boolean>;
}

export function createIntrospector(brokerUrl: string, creds: BrokerCredentials, f: FetchLike, timeoutMs = 5000): Introspector {
  const auth = authorization(creds);
  const url = endpoint(brokerUrl, '/oauth/introspect');
  return {
    async active(token) {
      if (!auth) throw new Error('introspection needs clientId/clientSecret or operatorToken');
      const res = await request(f, url, {
        method: 'POST',
        headers: { authorization: auth, 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
        body: new URLSearchParams({ token }).toString(),
        signal: AbortSignal.timeout(timeoutMs),
      });
      const body = await jsonOrThrow<{ active?: unknown }>(res);
      return body?.active === true;
    },
  };
}
