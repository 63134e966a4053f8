/**
 * The Lua scripts of the Redis backplane. Each runs atomically; ioredis loads it once and runs it
 * by SHA (EVALSHA, falling back to EVAL after a script flush or a restarted Redis).
 *
 * Keys (PROTOCOL.md §7): KEYS[1] the document hash `<prefix><codespace>` (fields `code`,
 * `code_version`, `version`), KEYS[2] the change-log stream `<prefix><codespace>:log` with entry
 * ids `<version>-0` and one field `e` holding the entry as JSON. A hash without `version` was
 * written by the SharePython API (or is absent): it is version 0 and any stream beside it
 * belongs to an older life of the codespace. The field `epoch` names the history (PROTOCOL.md
 * §1): made by the first load of a codespace, it changes when the history is lost (a Redis that
 * restarted empty) and started again, and every write names the epoch it belongs to.
 */

/**
 * ARGV: expected version, TTL in seconds (0: none), pub/sub channel, expected epoch, then for
 * each entry to append (consecutive versions, one or more: a channel's queued edits go in one
 * call) its JSON and the message to publish. Returns {1, new version} or {0, stored version,
 * stored epoch}; nothing is written unless all of them are.
 */
export const COMMIT_LUA = `
local h = redis.call('HMGET', KEYS[1], 'version', 'epoch')
local version = tonumber(h[1] or '0')
local epoch = h[2] or ''
if version ~= tonumber(ARGV[1]) or epoch ~= ARGV[4] then return {0, version, epoch} end
local next = version
for i = 5, #ARGV, 2 do
  next = next + 1
  redis.call('XADD', KEYS[2], next .. '-0', 'e', ARGV[i])
end
redis.call('HSET', KEYS[1], 'version', next)
local ttl = tonumber(ARGV[2])
if ttl > 0 then
  redis.call('EXPIRE', KEYS[1], ttl)
  redis.call('EXPIRE', KEYS[2], ttl)
end
for i = 6, #ARGV, 2 do redis.call('PUBLISH', ARGV[3], ARGV[i]) end
return {1, next}
`;

/**
 * ARGV: history window, a new epoch, TTL. Returns {code, code_version, version, entries, epoch},
 * the entries reaching from the older of (snapshot + 1) and (version - history + 1) to the end.
 * A codespace without an epoch (new, written by the SharePython API, or lost) starts a history
 * here, at version 0, so that every load of it names the same epoch.
 */
export const LOAD_LUA = `
local h = redis.call('HMGET', KEYS[1], 'code', 'code_version', 'version', 'epoch')
local code = h[1] or ''
if not h[3] then
  redis.call('DEL', KEYS[2])
  redis.call('HSET', KEYS[1], 'version', 0, 'code_version', 0, 'epoch', ARGV[2], 'code', code)
  local ttl = tonumber(ARGV[3])
  if ttl > 0 then redis.call('EXPIRE', KEYS[1], ttl) end
  return {code, 0, 0, {}, ARGV[2]}
end
if not h[4] then
  h[4] = ARGV[2]
  redis.call('HSET', KEYS[1], 'epoch', h[4])
end
local snapshot = tonumber(h[2] or '0')
local version = tonumber(h[3])
local from = math.min(snapshot + 1, version - tonumber(ARGV[1]) + 1)
if from < 1 then from = 1 end
return {code, snapshot, version, redis.call('XRANGE', KEYS[2], from .. '-0', '+'), h[4]}
`;

/** ARGV: version after which to read. Returns {stored version, entries after ARGV[1], epoch}. */
export const READ_LOG_LUA = `
local h = redis.call('HMGET', KEYS[1], 'version', 'epoch')
if not h[1] then return {0, {}, ''} end
return {tonumber(h[1]), redis.call('XRANGE', KEYS[2], (tonumber(ARGV[1]) + 1) .. '-0', '+'), h[2] or ''}
`;

/**
 * ARGV: text, its version, history window, TTL, epoch. Writes the snapshot if it is of the
 * stored history, newer than the stored one and not beyond the stored version, then trims the
 * log below snapshot - history (never above the snapshot). Returns 1 if written.
 */
export const SNAPSHOT_LUA = `
local h = redis.call('HMGET', KEYS[1], 'code_version', 'version', 'epoch')
if not h[2] or h[3] ~= ARGV[5] then return 0 end
local snapshot = tonumber(h[1] or '0')
local version = tonumber(ARGV[2])
if version <= snapshot or version > tonumber(h[2]) then return 0 end
redis.call('HSET', KEYS[1], 'code', ARGV[1], 'code_version', version)
local keep = version - tonumber(ARGV[3]) + 1
if keep > 1 then redis.call('XTRIM', KEYS[2], 'MINID', keep .. '-0') end
local ttl = tonumber(ARGV[4])
if ttl > 0 then
  redis.call('EXPIRE', KEYS[1], ttl)
  redis.call('EXPIRE', KEYS[2], ttl)
end
return 1
`;

/**
 * ARGV: text, version, TTL, epoch, then the log entries' JSON oldest first (ending at version).
 * Writes a history back into a store that holds no committed version at all (Redis came back
 * empty; a load may have started an epoch at version 0 since). Returns 1 if written, 0 if any
 * version is stored: those were acked by someone, and are never overwritten.
 */
export const RESTORE_LUA = `
local stored = tonumber(redis.call('HGET', KEYS[1], 'version') or '0')
local version = tonumber(ARGV[2])
if stored > 0 or version <= 0 then return 0 end
redis.call('DEL', KEYS[2])
redis.call('HSET', KEYS[1], 'code', ARGV[1], 'code_version', version, 'version', version, 'epoch', ARGV[4])
local first = version - (#ARGV - 4) + 1
for i = 5, #ARGV do
  redis.call('XADD', KEYS[2], (first + i - 5) .. '-0', 'e', ARGV[i])
end
local ttl = tonumber(ARGV[3])
if ttl > 0 then
  redis.call('EXPIRE', KEYS[1], ttl)
  redis.call('EXPIRE', KEYS[2], ttl)
end
return 1
`;

/** ARGV: TTL. Refreshes the expiry of both keys (only if the hash exists). */
export const TOUCH_LUA = `
local ttl = tonumber(ARGV[1])
if ttl <= 0 then return 0 end
if redis.call('EXPIRE', KEYS[1], ttl) == 1 then redis.call('EXPIRE', KEYS[2], ttl) end
return 1
`;
