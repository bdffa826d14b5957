/**
 * Baseline server: the cheapest useful hono route on @hono/node-server. It reads the (form) body so it
 * does the same I/O shape as an OAuth endpoint, and answers a small JSON. Run as its own process:
 *   node --import tsx bench/servers/bare-hono.ts <port> [flags]
 * Flags add app-wide middleware, to isolate what it costs:
 *   --mayfly-middleware  the two middlewares src/http/app.ts used to install (= --body-limit --late-header)
 *   --body-limit         hono's bodyLimit (reads c.req.raw.body: materialises an undici Request)
 *   --late-header        c.header(...) after `await next()` (materialises and re-wraps the Response)
 *   --fixed-middleware   the same two behaviours written so that neither happens, as app.ts has them
 *                        now (limitBody, the header set in place): bench/run.ts's reference row
 */
import { serve } from '@hono/node-server';
import { Hono, type Context, type MiddlewareHandler } from 'hono';
import { bodyLimit } from 'hono/body-limit';

const MAX = 65536;
const port = Number(process.argv[2]);
if (!Number.isInteger(port) || port <= 0) throw new Error('usage: bare-hono.ts <port> [--mayfly-middleware | --body-limit | --late-header | --fixed-middleware]');
const flag = (f: string) => process.argv.includes(f);

const tooLarge = (c: Context) => c.json({ error: 'invalid_request' }, 413);

/** Hono's bodyLimit only for bodies without a declared length; Node's parser enforces Content-Length framing. */
const declaredLengthLimit: MiddlewareHandler = async (c, next) => {
  if (c.req.method === 'GET' || c.req.method === 'HEAD') return next();
  const len = c.req.header('content-length');
  if (len !== undefined && c.req.header('transfer-encoding') === undefined) return Number(len) > MAX ? tooLarge(c) : next();
  return streamedLimit(c, next);
};
const streamedLimit = bodyLimit({ maxSize: MAX, onError: tooLarge });

const app = new Hono();
if (flag('--fixed-middleware')) {
  app.use('*', declaredLengthLimit);
  app.use('*', async (c, next) => {
    await next();
    c.res.headers.set('X-Content-Type-Options', 'nosniff'); // the headers object of the cached response: no re-wrap
  });
}
if (flag('--mayfly-middleware') || flag('--body-limit')) app.use('*', bodyLimit({ maxSize: MAX, onError: tooLarge }));
if (flag('--mayfly-middleware') || flag('--late-header')) {
  app.use('*', async (c, next) => {
    await next();
    c.header('X-Content-Type-Options', 'nosniff');
  });
}
app.get('/ready', (c) => c.json({ ok: true }));
app.post('/echo', async (c) => {
  const body = await c.req.text();
  return c.json({ ok: true, bytes: body.length }, 200, { 'Cache-Control': 'no-store' });
});

const server = serve({ fetch: app.fetch, port, hostname: '127.0.0.1' });
const stop = () => server.close(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
