/**
 * The HTTP surface: a small hono app, one route file per resource (http/routes/), body limits and
 * error mapping applied once here.
 */
import { Hono } from 'hono';
import type { Broker } from '../broker.js';
import { errorBody, onError } from './errors.js';
import { limitBody } from './body-limit.js';
import { allowedMethods } from './methods.js';
import { tokenRoute } from './routes/oauth-token.js';
import { introspectRoute } from './routes/oauth-introspect.js';
import { revokeRoute } from './routes/oauth-revoke.js';
import { taskRoutes } from './routes/tasks.js';
import { identityRoutes } from './routes/identities.js';
import { wellKnownRoutes } from './routes/well-known.js';
import { healthRoutes } from './routes/health.js';
import { auditRoutes } from './routes/audit.js';
import { devRoutes } from './routes/dev.js';
import { revocationRoutes } from './routes/revocations.js';
import { certificateRoutes } from './routes/certificates.js';
import { joinTokenRoutes } from './routes/join-tokens.js';
import { caRoutes, ocspBodyLimit } from './routes/ca.js';
import { usageRoutes } from './routes/usage.js';

export function createApp(b: Broker): Hono {
  const app = new Hono();
  // first, so the answers of every later middleware (a body-limit 413 too) carry it
  app.use('*', async (c, next) => {
    await next();
    c.res.headers.set('X-Content-Type-Options', 'nosniff'); // in place: c.header() here would re-wrap the response
  });
  app.use('/v1/ca/ocsp', ocspBodyLimit(b)); // before the app-wide cap: OCSP clients are answered in OCSP form
  app.use('*', limitBody(b.config.limits.bodyBytes));
  healthRoutes(app, b);
  wellKnownRoutes(app, b);
  tokenRoute(app, b);
  introspectRoute(app, b);
  revokeRoute(app, b);
  taskRoutes(app, b);
  identityRoutes(app, b);
  joinTokenRoutes(app, b);
  auditRoutes(app, b);
  usageRoutes(app, b);
  revocationRoutes(app, b);
  certificateRoutes(app, b);
  caRoutes(app, b);
  devRoutes(app, b);
  const allowed = allowedMethods(app);
  app.notFound((c) => {
    const methods = allowed(c.req.path);
    if (methods.length === 0) return c.json(errorBody('not_found', `no route for ${c.req.method} ${c.req.path}`), 404, { 'Cache-Control': 'no-store' });
    const allow = methods.join(', ');
    if (c.req.method === 'OPTIONS') return c.body(null, 204, { Allow: allow });
    return c.json(errorBody('method_not_allowed', `${c.req.path} answers ${allow}, not ${c.req.method}`), 405, { Allow: allow, 'Cache-Control': 'no-store' });
  });
  app.onError(onError(b.log));
  return app;
}
