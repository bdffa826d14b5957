/**
 * The broker's public keys, from its JWKS (jose's createRemoteJWKSet: cached, one refetch per cooldown
 * for an unknown kid) with a per-(kid, alg) memo in front, so the hot path hands jwtVerify an imported
 * key without another async layer. Every JWKS fetch empties the memo, so a key dropped from the JWKS
 * stops verifying as soon as jose would stop using it.
 */
import { createRemoteJWKSet, customFetch, type JWTVerifyGetKey } from 'jose';
import type { FetchLike } from '../http.js';

type Key = Awaited<ReturnType<JWTVerifyGetKey>>;

export interface BrokerKeys {
  resolve: JWTVerifyGetKey;
  readonly fresh: boolean;
  readonly coolingDown: boolean;
}

export function brokerKeys(jwksUri: string, f: FetchLike, o: { cooldownMs: number; cacheMaxAgeMs: number }): BrokerKeys {
  let memo = new Map<string, Key>();
  let generation = 0;
  const remote = createRemoteJWKSet(new URL(jwksUri), {
    cooldownDuration: o.cooldownMs,
    cacheMaxAge: o.cacheMaxAgeMs,
    [customFetch]: async (url, init) => {
      const res = await f(url, init);
      generation++;
      memo = new Map();
      return res;
    },
  });
  const resolve: JWTVerifyGetKey = (header, token) => {
    const id = `${header.kid}\u0000${header.alg}`;
    const hit = memo.get(id);
    if (hit !== undefined && remote.fresh) return hit;
    const gen = generation;
    return remote(header, token).then((k) => {
      if (gen === generation && remote.fresh) memo.set(id, k);
      return k;
    });
  };
  return {
    resolve,
    get fresh() {
      return remote.fresh;
    },
    get coolingDown() {
      return remote.coolingDown;
    },
  };
}
