/**
 * The broker's API as the bench uses it: open a task, exchange, introspect, close. Also builds the exact
 * request bodies/headers the load generator replays, so a scenario and its sanity check send the same bytes.
 */
import { AGENT_ID, AUDIENCE, RS_CLIENT } from './broker-config.js';

export const GRANT_TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
export const TT_JWT = 'urn:ietf:params:oauth:token-type:jwt';

export interface HttpRequestSpec {
  method: 'POST';
  path: string;
  headers: Record<string, string>;
  body: string;
  /** Load generation only (bench/lib/load.ts): send these bodies instead of `body`, each connection its own share of them, in turn. */
  bodies?: readonly string[];
  /** Load generation only: a 2xx answer whose body this rejects counts as a mismatch, which makes the run invalid. */
  verifyBody?: (body: string) => boolean;
}

const FORM = 'application/x-www-form-urlencoded';

export class MayflyClient {
  constructor(
    readonly baseUrl: string,
    private orchJwt: string,
    private agentJwt: string,
  ) {}

  exchangeRequest(taskId: string): HttpRequestSpec {
    const body = new URLSearchParams({ grant_type: GRANT_TOKEN_EXCHANGE, subject_token: this.agentJwt, subject_token_type: TT_JWT, task_id: taskId });
    return { method: 'POST', path: '/oauth/token', headers: { 'content-type': FORM }, body: body.toString() };
  }

  introspectRequest(token: string): HttpRequestSpec {
    const basic = Buffer.from(`${RS_CLIENT.id}:${RS_CLIENT.secret}`).toString('base64');
    return { method: 'POST', path: '/oauth/introspect', headers: { 'content-type': FORM, authorization: `Basic ${basic}` }, body: new URLSearchParams({ token }).toString() };
  }

  closeRequest(taskId: string): HttpRequestSpec {
    return { method: 'POST', path: `/v1/tasks/${encodeURIComponent(taskId)}/close`, headers: { authorization: `Bearer ${this.orchJwt}` }, body: '' };
  }

  async openTask(): Promise<string> {
    const body = { agents: [AGENT_ID], scopes: ['read'], tools: ['t1'], audiences: [AUDIENCE], ttl: '1h' };
    const r = await this.send({ method: 'POST', path: '/v1/tasks', headers: { authorization: `Bearer ${this.orchJwt}`, 'content-type': 'application/json' }, body: JSON.stringify(body) }, 201);
    const id = (r as { task_id?: unknown }).task_id;
    if (typeof id !== 'string') throw new Error(`open task: no task_id in ${JSON.stringify(r)}`);
    return id;
  }

  async exchange(taskId: string): Promise<string> {
    const r = (await this.send(this.exchangeRequest(taskId), 200)) as { access_token?: unknown };
    if (typeof r.access_token !== 'string') throw new Error(`exchange: no access_token in ${JSON.stringify(r)}`);
    return r.access_token;
  }

  async introspect(token: string): Promise<{ active: boolean } & Record<string, unknown>> {
    return (await this.send(this.introspectRequest(token), 200)) as { active: boolean };
  }

  async close(taskId: string): Promise<{ state: string; revoked: number }> {
    return (await this.send(this.closeRequest(taskId), 200)) as { state: string; revoked: number };
  }

  async send(req: HttpRequestSpec, expect: number): Promise<unknown> {
    const res = await fetch(this.baseUrl + req.path, { method: req.method, headers: req.headers, body: req.body, signal: AbortSignal.timeout(10_000) });
    const text = await res.text();
    if (res.status !== expect) throw new Error(`${req.method} ${req.path}: HTTP ${res.status} (expected ${expect}): ${text.slice(0, 500)}`);
    return JSON.parse(text) as unknown;
  }
}
