/** Policy rules as pure functions: least privilege by intersection, refusal instead of trimming. */
import { describe, expect, it } from 'vitest';
import { narrow } from '../../src/policy/rule.js';
import { decideExchange } from '../../src/policy/exchange.js';
import { decideTaskOpen } from '../../src/policy/task-open.js';
import { patternWithin } from '../../src/ids/spiffe.js';
import type { ExchangeContext } from '../../src/policy/exchange-context.js';
import type { Registration } from '../../src/config/config.js';
import type { TaskRecord } from '../../src/store/store.js';

const NOW = 1_700_000_000_000;
const reg = (over: Partial<Registration> = {}): Registration => ({
  spiffeId: 'spiffe://td/agent/a',
  attestor: 'ci',
  match: { sub: 'a' },
  owner: 'o',
  roles: ['agent'],
  scopes: ['read', 'write'],
  tools: ['search', 'edit'],
  audiences: ['https://api'],
  certificates: false,
  ...over,
});
const task = (over: Partial<TaskRecord> = {}): TaskRecord => ({
  id: 'tsk_x',
  state: 'open',
  openedBy: 'spiffe://td/orch',
  createdAt: NOW - 1000,
  expiresAt: NOW + 3_600_000,
  agents: ['spiffe://td/agent/*'],
  scopes: ['read', 'admin'],
  tools: ['search', 'deploy'],
  audiences: ['https://api', 'https://other'],
  ...over,
});
const ctx = (over: Partial<ExchangeContext> = {}): ExchangeContext => {
  const t = over.task === undefined ? task() : over.task;
  return {
    identity: { spiffeId: 'spiffe://td/agent/a', registration: reg(), attestor: 'ci', proofExpiresAt: NOW + 600_000 },
    identityState: { locked: false, revokedBefore: 0 },
    task: t,
    taskStatus: t ? { open: true } : null,
    requested: {},
    now: NOW,
    tokens: { defaultTtlMs: 300_000, maxTtlMs: 900_000, alg: 'ES256' },
    ...over,
  };
};
const refusal = (c: ExchangeContext) => {
  const d = decideExchange(c);
  return 'refusal' in d ? d.refusal : undefined;
};

describe('narrow', () => {
  it('grants the whole intersection when nothing is requested', () => expect(narrow(undefined, ['a', 'b', 'c'], ['b', 'c', 'd'])).toEqual({ granted: ['b', 'c'] }));
  it('grants exactly what was requested inside it', () => expect(narrow(['c'], ['a', 'b', 'c'], ['b', 'c'])).toEqual({ granted: ['c'] }));
  it('names what lies outside instead of trimming', () => expect(narrow(['a', 'c'], ['a', 'b', 'c'], ['b', 'c'])).toEqual({ outside: ['a'] }));
});

describe('exchange rules', () => {
  it('grants request ∩ task ∩ registration', () => {
    const d = decideExchange(ctx());
    expect(d).toEqual({ draft: { scopes: ['read'], tools: ['search'], audiences: ['https://api'], ttlMs: 300_000 } });
  });
  it('refuses a scope the task allows but the registration does not', () =>
    expect(refusal(ctx({ requested: { scopes: ['admin'] } }))).toMatchObject({ code: 'invalid_scope', reason: 'scope_escalation' }));
  it('refuses a tool outside the ceiling', () =>
    expect(refusal(ctx({ requested: { tools: ['deploy'] } }))).toMatchObject({ code: 'invalid_scope', reason: 'tool_escalation' }));
  it('refuses an audience outside the ceiling with invalid_target', () =>
    expect(refusal(ctx({ requested: { audiences: ['https://other'] } }))).toMatchObject({ code: 'invalid_target', reason: 'audience_escalation' }));
  it('refuses an agent not named by the task', () =>
    expect(refusal(ctx({ task: task({ agents: ['spiffe://td/agent/b'] }) }))).toMatchObject({ reason: 'agent_not_in_task' }));
  it('refuses a locked identity first', () =>
    expect(refusal(ctx({ identityState: { locked: true, revokedBefore: NOW }, requested: { scopes: ['admin'] } }))).toMatchObject({ reason: 'identity_locked' }));
  it('refuses an unknown or closed task', () => {
    expect(refusal(ctx({ task: null }))).toMatchObject({ reason: 'task_unknown' });
    expect(refusal(ctx({ taskStatus: { open: false, reason: 'closed' } }))).toMatchObject({ reason: 'task_closed' });
  });
  it('clamps the lifetime to registration, config and the time left in the task', () => {
    const with10 = ctx({ identity: { ...ctx().identity, registration: reg({ maxTtlMs: 600_000 }) } });
    expect((decideExchange(with10) as { draft: { ttlMs: number } }).draft.ttlMs).toBe(600_000);
    const with1h = ctx({ identity: { ...ctx().identity, registration: reg({ maxTtlMs: 3_600_000 }) } });
    expect((decideExchange(with1h) as { draft: { ttlMs: number } }).draft.ttlMs).toBe(900_000);
    const nearEnd = ctx({ task: task({ expiresAt: NOW + 42_000 }) });
    expect((decideExchange(nearEnd) as { draft: { ttlMs: number } }).draft.ttlMs).toBe(42_000);
    expect(refusal(ctx({ task: task({ expiresAt: NOW + 500 }) }))).toMatchObject({ reason: 'task_expired' });
  });
});

describe('delegation rules (the parent token as one more ceiling)', () => {
  const parent = { clientId: 'spiffe://td/agent/z', scopes: ['read'], tools: [], audiences: ['https://api'], expMs: NOW + 60_000, bound: false, depth: 0 };
  it('grants at most the parent: scopes, tools, audiences, lifetime', () => {
    expect(decideExchange(ctx({ parent }))).toEqual({ draft: { scopes: ['read'], tools: [], audiences: ['https://api'], ttlMs: 60_000 } });
    expect(refusal(ctx({ parent: { ...parent, scopes: [] }, requested: { scopes: ['read'] } }))).toMatchObject({ code: 'invalid_scope', reason: 'scope_escalation' });
    expect(refusal(ctx({ parent, requested: { tools: ['search'] } }))).toMatchObject({ reason: 'tool_escalation' });
    expect(refusal(ctx({ parent: { ...parent, audiences: ['https://other'] } }))).toMatchObject({ code: 'invalid_target', reason: 'no_audience' });
    expect(refusal(ctx({ parent: { ...parent, expMs: NOW + 500 } }))).toMatchObject({ reason: 'parent_expiring' });
  });
  it('refuses delegating to oneself, a bound token, and chains deeper than four', () => {
    expect(refusal(ctx({ parent: { ...parent, clientId: 'spiffe://td/agent/a' } }))).toMatchObject({ reason: 'delegation_to_self' });
    expect(refusal(ctx({ parent: { ...parent, bound: true } }))).toMatchObject({ reason: 'delegation_of_bound_token' });
    expect(refusal(ctx({ parent: { ...parent, depth: 4 } }))).toMatchObject({ reason: 'delegation_too_deep' });
    expect(decideExchange(ctx({ parent: { ...parent, depth: 3 } }))).toHaveProperty('draft');
  });
});

describe('task opening rules', () => {
  const orch = { spiffeId: 'spiffe://td/orch', registration: reg({ roles: ['orchestrator'], agents: ['spiffe://td/agent/*'] }), attestor: 'ci', proofExpiresAt: 0 };
  const open = (spec: Partial<TaskRecord>, ttl?: number) =>
    decideTaskOpen({
      opener: { kind: 'workload', identity: orch, identityState: { locked: false, revokedBefore: 0 } },
      spec: { agents: ['spiffe://td/agent/a'], scopes: ['read'], tools: [], audiences: [], ...spec },
      ...(ttl ? { requestedTtlMs: ttl } : {}),
      trustDomain: 'td',
      tasks: { defaultTtlMs: 1_800_000, maxTtlMs: 7_200_000, retentionMs: 0 },
    });
  it('accepts a task inside the orchestrator registration and caps its ttl', () => {
    expect(open({}, 10 * 3_600_000)).toEqual({ draft: { ttlMs: 7_200_000 } });
    expect(open({})).toEqual({ draft: { ttlMs: 1_800_000 } });
  });
  it('refuses a task wider than the registration', () => {
    expect(open({ scopes: ['admin'] })).toMatchObject({ refusal: { code: 'invalid_scope' } });
    expect(open({ tools: ['deploy'] })).toMatchObject({ refusal: { code: 'invalid_scope' } });
    expect(open({ audiences: ['https://evil'] })).toMatchObject({ refusal: { code: 'invalid_target' } });
    expect(open({ agents: ['spiffe://td/orch2'] })).toMatchObject({ refusal: { reason: 'agent_escalation' } });
    expect(open({ agents: ['spiffe://other/agent/a'] })).toMatchObject({ refusal: { reason: 'agent_foreign_trust_domain' } });
  });
  it('pattern containment', () => {
    expect(patternWithin('spiffe://td/agent/a', 'spiffe://td/agent/*')).toBe(true);
    expect(patternWithin('spiffe://td/agent/x/*', 'spiffe://td/agent/*')).toBe(true);
    expect(patternWithin('spiffe://td/agent/*', 'spiffe://td/agent/a')).toBe(false);
    expect(patternWithin('spiffe://td/agents/*', 'spiffe://td/agent/*')).toBe(false);
    expect(patternWithin('spiffe://td/agent', 'spiffe://td/agent/*')).toBe(false);
  });
});
