/**
 * Which methods a path answers, from the app's own route table: a request for a known path with
 * another method gets 405 with `Allow` (RFC 9110 §15.5.6), and OPTIONS gets the `Allow` list
 * (§9.3.7), rather than a 404 that says the path does not exist.
 */
import type { Hono } from 'hono';

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** A hono path (`/v1/tasks/:id`, `/v1/identities/:id{.+}/lock`) as an anchored RegExp. */
function pattern(path: string): RegExp {
  const parts = path.split('/').map((seg) => {
    const m = /^:[A-Za-z_]\w*(?:\{(.+)\})?$/.exec(seg);
    if (!m) return escape(seg);
    return m[1] ? `(?:${m[1]})` : '[^/]+';
  });
  return new RegExp(`^${parts.join('/')}$`);
}

/** A lookup of the methods each path answers (HEAD wherever GET is), built once the routes are in. */
export function allowedMethods(app: Hono): (path: string) => string[] {
  let table: Array<{ re: RegExp; methods: Set<string> }> | undefined;
  return (path) => {
    if (!table) {
      const byPath = new Map<string, Set<string>>();
      for (const r of app.routes) {
        if (r.method === 'ALL') continue; // middleware
        const set = byPath.get(r.path) ?? new Set<string>();
        set.add(r.method);
        byPath.set(r.path, set);
      }
      table = [...byPath].map(([p, methods]) => ({ re: pattern(p), methods }));
    }
    const out = new Set<string>();
    for (const { re, methods } of table) if (re.test(path)) for (const m of methods) out.add(m);
    if (out.has('GET')) out.add('HEAD');
    if (out.size > 0) out.add('OPTIONS');
    return [...out].sort();
  };
}
