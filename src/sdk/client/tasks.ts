/** The orchestrator's calls: open, show and close a task (POST /v1/tasks, GET /v1/tasks/{id}, POST .../close). */
import { attestationHeader } from './mtls.js';
import { endpoint, jsonOrThrow, request, type FetchLike } from '../http.js';

/** The body of POST /v1/tasks. */
export interface TaskSpec {
  agents: string[];
  scopes?: string[];
  tools?: string[];
  audiences?: string[];
  /** A duration such as "30m", or seconds. */
  ttl?: string | number;
  purpose?: string;
  on_behalf_of?: string;
}

/** A task as the broker shows it. */
export interface TaskView {
  task_id: string;
  state: 'open' | 'closed';
  close_reason?: string;
  on_behalf_of: string | null;
  agents: string[];
  scopes: string[];
  tools: string[];
  audiences: string[];
  purpose: string | null;
  opened_by: string;
  created_at: string;
  expires_at: string;
  closed_at?: string;
  credentials?: { issued: number; active: number; by_agent: Record<string, number> };
}

export interface TaskClosed {
  task_id: string;
  state: 'closed';
  /** Credentials that were active when the task closed. */
  revoked: number;
  closed_at: string;
}

export interface TaskApi {
  open(spec: TaskSpec): Promise<TaskView>;
  get(id: string): Promise<TaskView>;
  close(id: string): Promise<TaskClosed>;
}

/** `bearer` gives the orchestrator's attestation JWT or an operator token, fresh for each call. */
export function taskApi(brokerUrl: string, bearer: () => Promise<string>, f: FetchLike): TaskApi {
  const call = async <T>(method: string, path: string, body?: unknown): Promise<T> => {
    const headers: Record<string, string> = { ...attestationHeader(await bearer()), accept: 'application/json' };
    if (body !== undefined) headers['content-type'] = 'application/json';
    const res = await request(f, endpoint(brokerUrl, path), { method, headers, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
    return jsonOrThrow<T>(res);
  };
  const path = (id: string) => `/v1/tasks/${encodeURIComponent(id)}`;
  return {
    open: (spec) => call<TaskView>('POST', '/v1/tasks', spec),
    get: (id) => call<TaskView>('GET', path(id)),
    close: (id) => call<TaskClosed>('POST', `${path(id)}/close`),
  };
}
