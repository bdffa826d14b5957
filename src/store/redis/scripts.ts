/**
 * Lua scripts for RedisStore. Each runs atomically on the server, touches only keys of one hash slot
 * (the task's `{taskId}` tag, or a single identity/principal key), so they are Redis Cluster-safe.
 *
 * Times always come from the caller (ARGV `now`), never from the server clock: scripts stay
 * deterministic and tests can pass explicit instants. Only key TTLs use server time.
 * Written for Redis ≥ 6.2 (XTRIM MINID; the store also uses GETEX): no SET PXAT, no EXPIRE GT/NX, no
 * exclusive XRANGE bounds.
 */
import { LOCK_HISTORY, SERIAL_SLOT } from '../store.js';

/** A task's certificates zset and its holders' indexes are pruned of expired members on one certificate of the task in this many (RECORD_CERT). */
const PRUNE_EVERY = 32;

/** Extends a key's expiry to `at` (ms) unless it already lives longer; `now` estimates the current expiry. */
const EXTEND = `
local function extend(key, at, now)
  local pttl = redis.call('PTTL', key)
  if pttl == -1 or (pttl >= 0 and tonumber(now) + pttl < tonumber(at)) then
    redis.call('PEXPIREAT', key, at)
  end
end
`;

/** KEYS[1]: the task hash. `t`: its state, deadline and purge instant; the script ends unless the task takes issuance at ARGV[1] (now). */
const TASK_OPEN = `
local t = redis.call('HMGET', KEYS[1], 'state', 'expires_at', 'purge_at')
if not t[1] then return 'task_unknown' end
if t[1] ~= 'open' then return 'task_closed' end
if tonumber(t[2]) <= tonumber(ARGV[1]) then return 'task_expired' end
`;

/**
 * KEYS: task hash, creds zset, agents hash. ARGV: now, jti, exp, agent. After TASK_OPEN.
 * The whole per-credential footprint is one zset member (jti -> exp) and one agents-hash increment.
 * Expired members are pruned when the Lua expression `prune` holds: on every call for tokens (the zset
 * is ordered by exp, so this is O(log N + M) and amortises to one removal per issuance); on one
 * certificate in PRUNE_EVERY (RECORD_CERTIFICATE_ALL): every reader selects by score, so an expired
 * member waiting for the next prune changes no answer.
 */
const recordIn = (prune: string, mayBeNew: string) => `if ${prune} then redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[1]) end
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[2])
redis.call('HINCRBY', KEYS[1], 'issued', 1)
-- keys created (or re-created after a prune or a revocation emptied them) inherit the task's purge
-- instant, checked when \`mayBeNew\` holds; the agents hash is never pruned, so its first count says it
-- was just made (or that a new agent joined it: the same instant again, harmless), without a PTTL per call
if ${mayBeNew} and redis.call('PTTL', KEYS[2]) == -1 then redis.call('PEXPIREAT', KEYS[2], t[3]) end
if redis.call('HINCRBY', KEYS[3], ARGV[4], 1) == 1 then redis.call('PEXPIREAT', KEYS[3], t[3]) end
`;
// a token's zset may have been emptied by a revocation (REVOKE_JTI) as well as by a prune: checked every time
const RECORD = `${TASK_OPEN}${recordIn('true', 'true')}`;

/**
 * The task's expiry counts per agent (hash `agent|exp|iat` -> how many of the agent's credentials were
 * issued and expire at those instants), so a view can tell how many live credentials an identity's lock
 * or revocation covers, at a few bytes per distinct second rather than per credential. Past 4,096
 * fields the expired ones are dropped (rare: credentials live minutes). `t` as RECORD reads it.
 */
const COUNT_EXPIRY = `
local function count_expiry(key, field, t, now)
  -- only a new field can mean a new key (one without a TTL) or one field more than the bound
  if redis.call('HINCRBY', key, field, 1) ~= 1 then return end
  if redis.call('PTTL', key) == -1 then redis.call('PEXPIREAT', key, t[3]) end
  if redis.call('HLEN', key) > 4096 then
    for _, f in ipairs(redis.call('HKEYS', key)) do
      if tonumber(string.match(f, '|(%d+)|%d+$')) <= tonumber(now) then redis.call('HDEL', key, f) end
    end
  end
end
`;

/** KEYS: as RECORD, then the task's expiry counts (COUNT_EXPIRY). ARGV: as RECORD, then iat. */
export const RECORD_ISSUANCE = `${COUNT_EXPIRY}${RECORD}count_expiry(KEYS[4], ARGV[4] .. '|' .. ARGV[3] .. '|' .. ARGV[5], t, ARGV[1])
return 'ok'
`;

/**
 * A token attested by one of the task's own certificates (store.ts IssuanceRecord.attestedBy): as
 * RECORD_ISSUANCE, refused ('certificate_revoked') once that serial is in the task's revoked
 * certificates (REVOKE_TASK_CERTIFICATE), else also listed under it (`jti|iat` -> exp), so revoking the
 * certificate finds every token it attested: one recorded after the revocation is refused here.
 * KEYS: as RECORD_ISSUANCE, then the task's revoked certificates and the serial's attested tokens.
 * ARGV: as RECORD_ISSUANCE, then the serial.
 */
export const RECORD_ATTESTED_ISSUANCE = `${COUNT_EXPIRY}if redis.call('ZSCORE', KEYS[5], ARGV[6]) then return 'certificate_revoked' end
${RECORD}count_expiry(KEYS[4], ARGV[4] .. '|' .. ARGV[3] .. '|' .. ARGV[5], t, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[6], '-inf', ARGV[1])
redis.call('ZADD', KEYS[6], ARGV[3], ARGV[2] .. '|' .. ARGV[5])
if redis.call('PTTL', KEYS[6]) == -1 then redis.call('PEXPIREAT', KEYS[6], t[3]) end
return 'ok'
`;

/**
 * A serial (ARGV, 1-40 hex digits, checked by the caller) as one 20-byte slot: big-endian, left-padded.
 * Made here rather than sent: one binary argument would switch the whole call to ioredis's slower
 * buffer encoding (~16 against ~7.5 µs to build it, measured), where these five words cost ~1 µs.
 */
const SLOT = `
local function slot(hex)
  hex = string.rep('0', 40 - #hex) .. hex
  return struct.pack('>I4I4I4I4I4', tonumber(string.sub(hex, 1, 8), 16), tonumber(string.sub(hex, 9, 16), 16),
    tonumber(string.sub(hex, 17, 24), 16), tonumber(string.sub(hex, 25, 32), 16), tonumber(string.sub(hex, 33, 40), 16))
end
`;

/**
 * append_slot(t): the serial ARGV[2]'s slot onto the task's slots string KEYS[4], which lives as long
 * as the task (t: TASK_OPEN's HMGET of it); APPEND's new length of one slot says the key was just made.
 * Returns how many certificates the task was issued, this one included.
 */
const APPEND_SLOT = `${SLOT}local function append_slot(t)
  local len = redis.call('APPEND', KEYS[4], slot(ARGV[2]))
  if len == ${SERIAL_SLOT} then redis.call('PEXPIREAT', KEYS[4], t[3]) end
  return len / ${SERIAL_SLOT}
end
`;

/**
 * A renewal (a certificate the task's certificate `parent` asked for over mTLS): refused
 * ('certificate_revoked', before anything is written) once `parent` is in the task's revoked
 * certificates `revoked` (REVOKE_TASK_CERTIFICATE), so a renewal racing its parent's revocation is
 * either recorded and linked before it (and the revocation's cascade finds it) or not at all.
 * `parent` '' for a certificate that is no renewal.
 */
const renewalRefused = (revoked: string, parent: string) => `if ${parent} ~= '' and redis.call('ZSCORE', ${revoked}, ${parent}) then return 'certificate_revoked' end
`;

/**
 * link_renewal(key, parent, t): a renewal listed beside the tokens its parent attested (the parent's
 * attested zset `key`) as `cert:<serial>` -> its notAfter (redis-store.ts renewals), for as long as the
 * task (t: TASK_OPEN's HMGET of it).
 */
const LINK_RENEWAL = `local function link_renewal(key, parent, t)
  if parent == '' then return end
  redis.call('ZREMRANGEBYSCORE', key, '-inf', ARGV[1])
  redis.call('ZADD', key, ARGV[3], 'cert:' .. ARGV[2])
  if redis.call('PTTL', key) == -1 then redis.call('PEXPIREAT', key, t[3]) end
end
`;

/**
 * A certificate's part of RECORD, after `beforeWrites` (a check that may still refuse), and `prune`:
 * whether this one prunes the task's certificates zset and its holders' indexes, on one certificate in
 * PRUNE_EVERY of the task (counted by its slots), the first included. Only that prune empties the
 * certificates zset (a revocation by serial leaves it), so only then, or at the first, can it lack its TTL.
 */
const recordCert = (beforeWrites: string) => `${TASK_OPEN}${beforeWrites}local prune = append_slot(t) % ${PRUNE_EVERY} == 1
${recordIn('prune', 'prune')}`;
/** The expiry count of the certificate ARGV[2] (agent ARGV[4], notAfter ARGV[3], issued at `iat` ms), its issuance in whole seconds as a lock's cutoff covers it (store.ts certificateExpiryField). */
const COUNT_CERTIFICATE = `${COUNT_EXPIRY}local function count_certificate(key, t, iat)
  count_expiry(key, ARGV[4] .. '|' .. ARGV[3] .. '|' .. string.format('%.0f', math.floor(tonumber(iat) / 1000) * 1000), t, ARGV[1])
end
`;

/**
 * KEYS: as RECORD (with the certs zset), then the task's serial slots string, its expiry counts, its
 * revoked certificates and the renewal's parent's attested zset (any task key for no renewal).
 * ARGV: as RECORD (the jti is the serial, in hex), then the issue instant and the renewal's parent
 * ('' for none). The serial's slot, appended in the same step, lets a CRL rebuild read a task's serials
 * as one binary string.
 */
export const RECORD_CERTIFICATE = `${APPEND_SLOT}${COUNT_CERTIFICATE}${LINK_RENEWAL}${recordCert(renewalRefused('KEYS[6]', 'ARGV[6]'))}count_certificate(KEYS[5], t, ARGV[5])
link_renewal(KEYS[7], ARGV[6], t)
return 'ok'
`;

/**
 * KEYS: task hash, creds zset, certs zset, revoked certs zset. ARGV: now, reason. Returns nil for an
 * unknown task, else {alreadyClosed 0|1, revoked, HGETALL of the task} (revoked: the unexpired
 * credentials not already revoked one by one). ZCOUNTs, O(log N) each: no loop over credentials,
 * no per-credential writes (credentials die because their task is closed, checked at introspection).
 */
export const CLOSE_TASK = `
local t = redis.call('HMGET', KEYS[1], 'state', 'expires_at', 'revoked_at_close')
if not t[1] then return false end
if t[1] == 'closed' then
  return {1, tonumber(t[3] or '0'), redis.call('HGETALL', KEYS[1])}
end
local revoked = 0
if tonumber(t[2]) > tonumber(ARGV[1]) then
  revoked = redis.call('ZCOUNT', KEYS[2], '(' .. ARGV[1], '+inf') + redis.call('ZCOUNT', KEYS[3], '(' .. ARGV[1], '+inf')
    - redis.call('ZCOUNT', KEYS[4], '(' .. ARGV[1], '+inf')
end
redis.call('HSET', KEYS[1], 'state', 'closed', 'closed_at', ARGV[1], 'close_reason', ARGV[2], 'revoked_at_close', revoked)
return {0, revoked, redis.call('HGETALL', KEYS[1])}
`;

/**
 * KEYS: task hash, creds zset, revoked-jti marker, expiry counts per agent. ARGV: jti, exp, now,
 * agent, iat. Returns 1 if newly revoked.
 * The marker lives until the credential's expiry (or the task's purge, whichever is first).
 */
/**
 * A certificate revoked by serial leaves its task's count of unexpired credentials: KEYS: task hash,
 * certs zset, revoked certs zset (serial -> notAfter), expiry counts. ARGV: serial, notAfter, now, its
 * expiry-count field. Nothing for a serial the task does not hold or that expired; 1 when newly revoked.
 */
export const REVOKE_TASK_CERTIFICATE = `
if tonumber(ARGV[2]) <= tonumber(ARGV[3]) or not redis.call('ZSCORE', KEYS[2], ARGV[1]) then return 0 end
if redis.call('ZADD', KEYS[3], 'NX', ARGV[2], ARGV[1]) == 0 then return 0 end
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', ARGV[3])
if redis.call('PTTL', KEYS[3]) == -1 then redis.call('PEXPIREAT', KEYS[3], redis.call('HGET', KEYS[1], 'purge_at') or ARGV[2]) end
if redis.call('HINCRBY', KEYS[4], ARGV[4], -1) <= 0 then redis.call('HDEL', KEYS[4], ARGV[4]) end
return 1
`;

export const REVOKE_JTI = `
if tonumber(ARGV[2]) <= tonumber(ARGV[3]) then return 0 end
local at = ARGV[2]
local purge = redis.call('HGET', KEYS[1], 'purge_at')
if purge and tonumber(purge) < tonumber(at) then at = purge end
local removed = redis.call('ZREM', KEYS[2], ARGV[1])
if removed == 1 then
  local f = ARGV[4] .. '|' .. ARGV[2] .. '|' .. ARGV[5]
  if redis.call('HINCRBY', KEYS[4], f, -1) <= 0 then redis.call('HDEL', KEYS[4], f) end
end
if not redis.call('SET', KEYS[3], '1', 'NX') then return 0 end
redis.call('PEXPIREAT', KEYS[3], at)
return 1
`;

/**
 * KEYS: identity hash. ARGV: now. Returns {locked_at, revoked_before}. revoked_before never moves
 * backwards; a locked identity has no TTL (it must not silently unlock by expiring). A lock of an
 * unlocked identity adds its cutoff to `locks` (space-separated, the latest LOCK_HISTORY).
 */
export const LOCK_IDENTITY = `
local cur = redis.call('HMGET', KEYS[1], 'locked', 'locked_at', 'revoked_before', 'locks')
local rb = ARGV[1]
if cur[3] and tonumber(cur[3]) > tonumber(rb) then rb = cur[3] end
local at = ARGV[1]
if cur[1] == '1' and cur[2] then at = cur[2] end
redis.call('HSET', KEYS[1], 'locked', '1', 'locked_at', at, 'revoked_before', rb)
if cur[1] ~= '1' then
  local locks = {}
  for c in string.gmatch(cur[4] or '', '%S+') do locks[#locks + 1] = c end
  locks[#locks + 1] = rb
  redis.call('HSET', KEYS[1], 'locks', table.concat(locks, ' ', math.max(1, #locks - ${LOCK_HISTORY - 1}), #locks))
end
redis.call('PERSIST', KEYS[1])
return {at, rb}
`;

/** KEYS: identity hash. ARGV: now, retainUntil. Returns revoked_before, or nil for an unknown identity. */
export const UNLOCK_IDENTITY =
  EXTEND +
  `
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
redis.call('HSET', KEYS[1], 'locked', '0')
redis.call('HDEL', KEYS[1], 'locked_at')
extend(KEYS[1], ARGV[2], ARGV[1])
return redis.call('HGET', KEYS[1], 'revoked_before') or '0'
`;

/** `v`: the principal KEYS[1]'s cutoff, ARGV[1] unless it already is later (never lowered), kept until ARGV[2]. */
const PRINCIPAL_CUTOFF = `
local cur = redis.call('GET', KEYS[1])
local v = ARGV[1]
if cur and tonumber(cur) >= tonumber(v) then
  v = cur
else
  redis.call('SET', KEYS[1], v, 'KEEPTTL')
end
extend(KEYS[1], ARGV[2], ARGV[1])
`;

/** KEYS: principal string. ARGV: now, retainUntil. Returns the stored revoked_before (never lowered). */
export const REVOKE_PRINCIPAL = `${EXTEND}${PRINCIPAL_CUTOFF}return v
`;

/**
 * KEYS: feed stream. ARGV: windowMs, field, value, ... Appends, then trims entries older than the
 * window measured on Redis's own clock (the one that numbers the entries), so broker clock skew can
 * never trim a fresh event. The trim is exact, not `~`: an approximate one drops only whole stream
 * nodes (~100 entries), so on a quiet feed events older than the window stayed, and a reader away
 * longer than the window was not told to resync. Revocations are rare next to issuance: exact
 * trimming costs nothing that shows.
 */
const appendFeed = (windowArg: number) => `local id = redis.call('XADD', KEYS[1], '*', unpack(ARGV, ${windowArg + 1}))
local ms = tonumber(string.match(id, '^(%d+)'))
redis.call('XTRIM', KEYS[1], 'MINID', math.max(0, ms - tonumber(ARGV[${windowArg}])))
return id
`;
export const APPEND_FEED = appendFeed(1);

/**
 * APPEND_FEED once per subject: KEYS: the stream, then a marker in its hash slot. ARGV: the marker's
 * lifetime (ms), then as APPEND_FEED. Nothing is appended (nil) while the marker exists.
 */
export const APPEND_FEED_ONCE = `if not redis.call('SET', KEYS[2], '1', 'PX', ARGV[1], 'NX') then return false end
${appendFeed(2)}`;

/** KEYS: a certificate's record hash. ARGV: notAfter (ms), then field, value pairs. Expires with the certificate. */
export const PUT_CERTIFICATE = `
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
redis.call('PEXPIREAT', KEYS[1], ARGV[1])
return 1
`;

/**
 * KEYS: a sorted set whose scores are the instants its members stop mattering (an identity's or
 * principal's certificates `serial|issuedAt` -> notAfter, the task inventory, the CRL's scopes and
 * serials). ARGV: now, until, member. Prunes members past their instant, adds (or raises, GT) this one,
 * and keeps the key alive as long as its latest member (never shortens it): bounded by what is live,
 * and gone once nothing is, even if nobody reads it.
 */
const INDEX_ADD = `${EXTEND}
local function index_add(key, now, till, member)
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
  local added = redis.call('ZADD', key, 'GT', 'CH', till, member)
  extend(key, till, now)
  return added
end
`;
export const ADD_TO_INDEX = `${INDEX_ADD}return index_add(KEYS[1], ARGV[1], ARGV[2], ARGV[3])
`;

/**
 * holder_add(key, now, till, member, prune): INDEX_ADD for a holder's certificates index in the record
 * script, which runs for every certificate: pruned only when RECORD's `prune` says (readers select by
 * score), and when the key must outlive `till` it is kept one lifetime (till - now) longer still, so
 * the certificates issued within that lifetime need no PEXPIREAT of their own (each call ~2.6 µs).
 */
const HOLDER_ADD = `
local function holder_add(key, now, till, member, prune)
  if prune then redis.call('ZREMRANGEBYSCORE', key, '-inf', now) end
  redis.call('ZADD', key, 'GT', till, member)
  local pttl = redis.call('PTTL', key)
  if pttl == -1 or (pttl >= 0 and tonumber(now) + pttl < till) then
    redis.call('PEXPIREAT', key, string.format('%.0f', 2 * till - tonumber(now)))
  end
end
`;

/**
 * A single Redis server only (its keys span hash slots): RECORD_CERTIFICATE, PUT_CERTIFICATE and the
 * holder indexes' ADD_TO_INDEX in one call, where a Cluster sends three or four (redis-store.ts).
 * First, when ARGV[8] is not '-', the issuer's states (store.ts IssuerState) are asserted: the identity
 * is unlocked with revoked_before ARGV[8], and (with a principal) the principal's cutoff is ARGV[9];
 * otherwise nothing is written and the reply is 'state_changed'.
 * KEYS: as RECORD_CERTIFICATE, then the serial's record hash, the identity's certificates index, the
 * principal's (any key without a principal), the identity's state hash, the principal's cutoff (any key
 * without a principal), the task's expiry counts, its revoked certificates, and the renewal's parent's
 * attested zset (any key for no renewal).
 * ARGV: as RECORD_CERTIFICATE (now, serial, notAfter, agent), then the issue instant, the task id, the
 * principal ('' for none), the expected revoked_before and principal cutoff (or '-'), and the renewal's
 * parent ('' for none: see renewalRefused and LINK_RENEWAL).
 * The record's fields, its kept-until instant (store.ts certificateKeptUntil) and the index member
 * (`serial|iat`) are made here from those: each argument costs the client ~0.5-1 µs to send (ioredis,
 * measured 28 against 10 arguments), and this call is made for every certificate.
 */
const RECORD_CERTIFICATE_ALL = `${HOLDER_ADD}${APPEND_SLOT}${COUNT_CERTIFICATE}${LINK_RENEWAL}local principal = ARGV[7] ~= ''
if ARGV[8] ~= '-' then
  local s = redis.call('HMGET', KEYS[8], 'locked', 'revoked_before')
  if s[1] == '1' or tonumber(s[2] or '0') ~= tonumber(ARGV[8]) then return 'state_changed' end
  if principal and tonumber(redis.call('GET', KEYS[9]) or '0') ~= tonumber(ARGV[9]) then return 'state_changed' end
end
${recordCert(renewalRefused('KEYS[11]', 'ARGV[10]'))}count_certificate(KEYS[10], t, ARGV[5])
link_renewal(KEYS[12], ARGV[10], t)
local exp, iat = tonumber(ARGV[3]), tonumber(ARGV[5])
if principal then
  redis.call('HSET', KEYS[5], 'task', ARGV[6], 'agent', ARGV[4], 'iat', ARGV[5], 'exp', ARGV[3], 'obo', ARGV[7])
else
  redis.call('HSET', KEYS[5], 'task', ARGV[6], 'agent', ARGV[4], 'iat', ARGV[5], 'exp', ARGV[3])
end
if ARGV[10] ~= '' then redis.call('HSET', KEYS[5], 'parent', ARGV[10]) end
redis.call('PEXPIREAT', KEYS[5], string.format('%.0f', exp + math.max(0, exp - iat)))
local member = ARGV[2] .. '|' .. ARGV[5]
holder_add(KEYS[6], ARGV[1], exp, member, prune)
if principal then holder_add(KEYS[7], ARGV[1], exp, member, prune) end
return 'ok'
`;

/** The keys of one certificate in RECORD_CERTIFICATE_ALL, and its arguments. */
export const RECORD_CERTIFICATE_KEYS = 12;
const RECORD_CERTIFICATE_ARGS = 10;

/**
 * RECORD_CERTIFICATE_ALL for several certificates (the ones recorded in one event-loop turn,
 * redis-store.ts), each with its grant's audit event, appended (XADD, MAXLEN ~) when it is recorded.
 * KEYS: the audit stream, then each certificate's 12 keys in turn. ARGV: the stream's MAXLEN, each
 * certificate's 10 arguments in turn, then each one's event as its field count (0: none) and fields.
 * Returns each one's reply, in order; each is decided on its own, as if recorded alone.
 */
export const RECORD_CERTIFICATES_ALL = `local function record(KEYS, ARGV)
${RECORD_CERTIFICATE_ALL}end
local nk, na = ${RECORD_CERTIFICATE_KEYS}, ${RECORD_CERTIFICATE_ARGS}
local n = (#KEYS - 1) / nk
local out, e = {}, 2 + n * na
for i = 0, n - 1 do
  local r = record({unpack(KEYS, 2 + i * nk, 1 + (i + 1) * nk)}, {unpack(ARGV, 2 + i * na, 1 + (i + 1) * na)})
  local c = tonumber(ARGV[e])
  if r == 'ok' and c > 0 then redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', unpack(ARGV, e + 1, e + c)) end
  e = e + c + 1
  out[i + 1] = r
end
return out
`;

/**
 * KEYS: a stream. ARGV: MAXLEN (approximate), then entries, each as its field count and its fields.
 * Several audit events in one call, in order (RedisStore batches the events of one event-loop turn).
 * Returns their ids.
 */
export const XADD_MANY = `
local ids = {}
local i = 2
while i <= #ARGV do
  local n = tonumber(ARGV[i])
  ids[#ids + 1] = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', unpack(ARGV, i + 1, i + n))
  i = i + n + 1
end
return ids
`;

/** KEYS: a hash. ARGV: now, until, field, value. HSETNX, and the key lives at least until `until`. Returns 1 if set. */
export const HSETNX_UNTIL = `${EXTEND}
local set = redis.call('HSETNX', KEYS[1], ARGV[3], ARGV[4])
extend(KEYS[1], ARGV[2], ARGV[1])
return set
`;

/**
 * The CRL every process shares (store.ts getOrClaimCrl/putCrl). KEYS: the shared CRL hash (v, at, der,
 * ps: the builtAt of the CRL it replaced), the build claim ("<version> <at>": the version being built,
 * as of the instant its CRL is issued). GET_OR_CLAIM_CRL ARGV: version, builtAfter, claimMs, now.
 * Returns {'crl', der, version, builtAt, previousAt}; else {'build', at, storedAt} (claimed; also over a
 * claim for an older version, whose build would be stale), at = now unless that is not after the stored
 * CRL's; or {'wait', at, storedAt}, the claim of another process.
 */
export const GET_OR_CLAIM_CRL = `
local s = redis.call('HMGET', KEYS[1], 'v', 'at')
if s[1] and tonumber(s[1]) >= tonumber(ARGV[1]) and tonumber(s[2]) > tonumber(ARGV[2]) then
  local d = redis.call('HMGET', KEYS[1], 'der', 'ps')
  return {'crl', d[1], s[1], s[2], d[2] or '0'}
end
local stored = s[2] or '0'
local c = redis.call('GET', KEYS[2])
if c then
  local v, at = string.match(c, '^(%d+) (%d+)$')
  if v and tonumber(v) >= tonumber(ARGV[1]) then return {'wait', at, stored} end
end
local at = string.format('%.0f', math.max(tonumber(ARGV[4]), tonumber(stored) + 1))
redis.call('SET', KEYS[2], ARGV[1] .. ' ' .. at, 'PX', ARGV[3])
return {'build', at, stored}
`;

/**
 * KEYS: as GET_OR_CLAIM_CRL. ARGV: version, builtAt, ttlMs, der. Stores unless a later one is there
 * (keeping when the one it replaced was built); releases the claim for this version.
 */
export const PUT_CRL = `
local s = redis.call('HMGET', KEYS[1], 'v', 'at')
local v, at = tonumber(ARGV[1]), tonumber(ARGV[2])
if not s[1] or tonumber(s[1]) < v or (tonumber(s[1]) == v and tonumber(s[2]) < at) then
  redis.call('HSET', KEYS[1], 'v', ARGV[1], 'at', ARGV[2], 'der', ARGV[4], 'ps', s[2] or '0')
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
end
local c = redis.call('GET', KEYS[2])
if c and string.match(c, '^(%d+) ') == ARGV[1] then redis.call('DEL', KEYS[2]) end
return 1
`;

/** KEYS: a hash. ARGV: field, value. HSETNX only on a hash that exists (never makes one without a TTL). */
export const HSETNX_IF_EXISTS = `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
return redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2])
`;

/**
 * One server: a principal's revocation in one atomic call (on a Cluster the three keys span slots:
 * REVOKE_PRINCIPAL, then the history and the index, each on its own).
 * KEYS: principal string, its cutoff history (sorted set), the index of revoked principals.
 * ARGV: now, retainUntil, the index's now, principal, history length kept.
 * Returns the stored revoked_before (never lowered); the history holds it, trimmed to the latest ARGV[5].
 */
export const REVOKE_PRINCIPAL_ALL = `${INDEX_ADD}${PRINCIPAL_CUTOFF}redis.call('ZADD', KEYS[2], v, v)
redis.call('ZREMRANGEBYRANK', KEYS[2], 0, -(tonumber(ARGV[5]) + 1))
extend(KEYS[2], ARGV[2], ARGV[1])
index_add(KEYS[3], ARGV[3], ARGV[2], ARGV[4])
return v
`;

export const SCRIPTS = {
  mfHsetnxIfExists: { lua: HSETNX_IF_EXISTS, numberOfKeys: 1 },
  mfGetOrClaimCrl: { lua: GET_OR_CLAIM_CRL, numberOfKeys: 2 },
  mfPutCrl: { lua: PUT_CRL, numberOfKeys: 2 },
  mfPutCertificate: { lua: PUT_CERTIFICATE, numberOfKeys: 1 },
  mfIndexAdd: { lua: ADD_TO_INDEX, numberOfKeys: 1 },
  mfHsetnxUntil: { lua: HSETNX_UNTIL, numberOfKeys: 1 },
  mfAppendFeed: { lua: APPEND_FEED, numberOfKeys: 1 },
  mfAppendFeedOnce: { lua: APPEND_FEED_ONCE, numberOfKeys: 2 },
  mfRecordIssuance: { lua: RECORD_ISSUANCE, numberOfKeys: 4 },
  mfRecordAttestedIssuance: { lua: RECORD_ATTESTED_ISSUANCE, numberOfKeys: 6 },
  mfRecordCertificate: { lua: RECORD_CERTIFICATE, numberOfKeys: 7 },
  mfRevokeTaskCertificate: { lua: REVOKE_TASK_CERTIFICATE, numberOfKeys: 4 },
  mfCloseTask: { lua: CLOSE_TASK, numberOfKeys: 4 },
  mfRevokeJti: { lua: REVOKE_JTI, numberOfKeys: 4 },
  mfLockIdentity: { lua: LOCK_IDENTITY, numberOfKeys: 1 },
  mfUnlockIdentity: { lua: UNLOCK_IDENTITY, numberOfKeys: 1 },
  mfRevokePrincipal: { lua: REVOKE_PRINCIPAL, numberOfKeys: 1 },
  mfRevokePrincipalAll: { lua: REVOKE_PRINCIPAL_ALL, numberOfKeys: 3 },
} as const;

export type ScriptName = keyof typeof SCRIPTS;
