/**
 * The Lua scripts of the Redis backplane. Each runs atomically; ioredis loads it once and runs it
 * by SHA (EVALSHA, falling back to EVAL after a script flush or a restarted Redis).
 *
 * Keys (PROTOCOL.md §7): KEYS[1] the document hash `<prefix><codespace>` (fields `code`,
 * `code_version`, `version`), KEYS[2] the change-log stream `<prefix><codespace>:log` with entry
 * ids `<version>-0` and one field `e` holding the entry as JSON. A hash without `version` was
 * written by the SharePython API (or is absent): it is version 0 and any stream beside it
 * belongs to an older life of the codespace.
 */

/**
 * ARGV: expected version, entry JSON, TTL in seconds (0: none), pub/sub channel.
 * Returns {1, new version} or {0, stored version}.
 */
export const COMMIT_LUA = `
local stored = redis.call('HGET', KEYS[1], 'version')
local expected = tonumber(ARGV[1])
local version = 0
if stored then version = tonumber(stored) end
if version ~= expected then return {0, version} end
if not stored then redis.call('DEL', KEYS[2]) end
local next = version + 1
redis.call('XADD', KEYS[2], next .. '-0', 'e', ARGV[2])
redis.call('HSET', KEYS[1], 'version', next)
local ttl = tonumber(ARGV[3])
if ttl > 0 then
  redis.call('EXPIRE', KEYS[1], ttl)
  redis.call('EXPIRE', KEYS[2], ttl)
end
redis.call('PUBLISH', ARGV[4], 'e' .. ARGV[2])
return {1, next}
`;

/**
 * ARGV: history window. Returns {code, code_version, version, entries}, the entries reaching
 * from the older of (snapshot + 1) and (version - history + 1) to the end.
 */
export const LOAD_LUA = `
local h = redis.call('HMGET', KEYS[1], 'code', 'code_version', 'version')
local code = h[1] or ''
if not h[3] then return {code, 0, 0, {}} end
local snapshot = tonumber(h[2] or '0')
local version = tonumber(h[3])
local from = math.min(snapshot + 1, version - tonumber(ARGV[1]) + 1)
if from < 1 then from = 1 end
return {code, snapshot, version, redis.call('XRANGE', KEYS[2], from .. '-0', '+')}
`;

/** ARGV: version after which to read. Returns {stored version, entries after ARGV[1]}. */
export const READ_LOG_LUA = `
local stored = redis.call('HGET', KEYS[1], 'version')
if not stored then return {0, {}} end
return {tonumber(stored), redis.call('XRANGE', KEYS[2], (tonumber(ARGV[1]) + 1) .. '-0', '+')}
`;

/**
 * ARGV: text, its version, history window, TTL. Writes the snapshot if it is newer than the
 * stored one and not beyond the stored version, then trims the log below snapshot - history
 * (never above the snapshot). Returns 1 if written.
 */
export const SNAPSHOT_LUA = `
local h = redis.call('HMGET', KEYS[1], 'code_version', 'version')
if not h[2] then return 0 end
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
 * ARGV: text, version, TTL, then the log entries' JSON oldest first (ending at version).
 * Rewrites a store that holds less than the caller (Redis came back empty, or from an older
 * save). Returns 1 if written, 0 if the store is at or beyond the version.
 */
export const RESTORE_LUA = `
local stored = tonumber(redis.call('HGET', KEYS[1], 'version') or '0')
local version = tonumber(ARGV[2])
if stored >= version then return 0 end
redis.call('DEL', KEYS[2])
redis.call('HSET', KEYS[1], 'code', ARGV[1], 'code_version', version, 'version', version)
local first = version - (#ARGV - 3) + 1
for i = 4, #ARGV do
  redis.call('XADD', KEYS[2], (first + i - 4) .. '-0', 'e', ARGV[i])
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
