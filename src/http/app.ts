/**
 * The HTTP surface: a small hono app, one route file per resource (http/routes/), body limits and
 * error mapping applied once here.
 */
import { Hono } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import type { Broker } from '../broker.js';
import { errorBody, onError } from './errors.js';
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
import { caRoutes } from './routes/ca.js';

export function createApp(b: Broker): Hono {
  const app = new Hono();
  app.use(
    '*',
    bodyLimit({
      maxSize: b.config.limits.bodyBytes,
      onError: (c) => c.json(errorBody('invalid_request', `request body exceeds ${b.config.limits.bodyBytes} bytes`), 413),
    }),
  );
  app.use('*', async (c, next) => {
    await next();
    c.header('X-Content-Type-Options', 'nosniff');
  });
  healthRoutes(app, b);
  wellKnownRoutes(app, b);
  tokenRoute(app, b);
  introspectRoute(app, b);
  revokeRoute(app, b);
  taskRoutes(app, b);
  identityRoutes(app, b);
  auditRoutes(app, b);
  revocationRoutes(app, b);
  certificateRoutes(app, b);
  caRoutes(app, b);
  devRoutes(app, b);
  app.notFound((c) => c.json(errorBody('not_found', `no route for ${c.req.method} ${c.req.path}`), 404));
  app.onError(onError(b.log));
  return app;
}
