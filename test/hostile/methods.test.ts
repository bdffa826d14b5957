/**
 * Wrong methods on known paths: 405 with Allow (RFC 9110 §15.5.6) and the standard error body; OPTIONS
 * lists the methods (§9.3.7); an unknown path is still 404. Nothing is changed by any of them.
 */
import { describe, expect, it } from 'vitest';
import { http, useBroker } from '../helpers/broker.js';

describe('methods', () => {
  const ctx = useBroker('memory');

  it('a known path with another method: 405, Allow naming what it answers', async () => {
    const cases: Array<[string, string, string]> = [
      ['GET', '/oauth/token', 'OPTIONS, POST'],
      ['GET', '/oauth/introspect', 'OPTIONS, POST'],
      ['PUT', '/v1/tasks', 'GET, HEAD, OPTIONS, POST'],
      ['DELETE', '/v1/tasks/tsk_AAAAAAAAAAAAAAAAAAAAAA', 'GET, HEAD, OPTIONS'],
      ['GET', '/v1/principals/user%3Acarol/revoke', 'OPTIONS, POST'],
      ['GET', '/v1/identities/spiffe%3A%2F%2Ftest.local%2Fagent%2Fb/lock', 'DELETE, OPTIONS, POST'],
      ['POST', '/v1/ca/crl', 'GET, HEAD, OPTIONS'],
      ['GET', '/v1/certificates/00ff/revoke', 'OPTIONS, POST'],
    ];
    for (const [method, path, allow] of cases) {
      const r = await http(`${ctx.b.url}${path}`, { method });
      expect(r.status, `${method} ${path}`).toBe(405);
      expect(r.headers.get('allow'), `${method} ${path}`).toBe(allow);
      expect(r.body).toMatchObject({ error: 'method_not_allowed' });
      expect(typeof r.body.error_description).toBe('string');
      if (path.endsWith('/lock')) continue; // (OPTIONS there lists GET too: /v1/identities/{id} takes ids with slashes)
      const o = await http(`${ctx.b.url}${path}`, { method: 'OPTIONS' });
      expect(o.status, `OPTIONS ${path}`).toBe(204);
      expect(o.headers.get('allow')).toBe(allow);
    }
  });

  it('an unknown path is 404 whatever the method', async () => {
    for (const method of ['GET', 'POST', 'OPTIONS', 'DELETE']) {
      const r = await http(`${ctx.b.url}/v1/nothing-here`, { method });
      expect(r.status, method).toBe(404);
      expect(r.body.error).toBe('not_found');
    }
  });
});
