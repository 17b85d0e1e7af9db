/**
 * Counters in Redis that live for a window: the HTTPS rate limits (shared-rate-store.ts) and
 * the SFTP failed-login counts and ban strikes (shared-ban-list.ts) count with these.
 *
 * The increment and the expiry are one Lua script, run atomically by Redis. Done as two
 * calls (INCR, then PEXPIRE), a crash, a failover or a dropped connection between them
 * leaves a key without expiry: a limit that never resets (an address refused for good) and
 * a key that stays in Redis forever. The script also gives an expiry to a key that has none
 * (one left by such a gap, or by a DECR of a key that had just expired), so every key this
 * module touches expires.
 */
import type { RedisConnection } from './connection.js';

/**
 * KEYS[1] = counter, ARGV[1] = window (ms), ARGV[2] = '1' to restart the window at every hit.
 * Returns {count, ms to expiry}.
 */
const INCREMENT = `
local n = redis.call('INCR', KEYS[1])
if n == 1 or ARGV[2] == '1' or redis.call('PTTL', KEYS[1]) < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
end
return {n, redis.call('PTTL', KEYS[1])}`;

/** DECR only an existing counter: a DECR of a missing key would create one without expiry. */
const DECREMENT = `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
return redis.call('DECR', KEYS[1])`;

export interface WindowCount {
  /** Hits in the window, this one included. */
  count: number;
  /** Milliseconds until the counter expires. */
  ttlMs: number;
}

/**
 * Count one hit on `key`. The window starts at the first hit (a fixed window: the limits
 * reset `windowMs` after it), or, with `slide`, again at every hit (the key lives until
 * `windowMs` pass without a hit: how long a ban strike is remembered).
 */
export async function countHit(redis: RedisConnection, key: string, windowMs: number, slide = false): Promise<WindowCount> {
  const [count, ttlMs] = await redis.eval(INCREMENT, 1, key, String(windowMs), slide ? '1' : '0') as [number, number];
  return { count, ttlMs: ttlMs > 0 ? ttlMs : windowMs };
}

/** Take one hit back (express-rate-limit's decrement); a counter that expired stays gone. */
export async function uncountHit(redis: RedisConnection, key: string): Promise<void> {
  await redis.eval(DECREMENT, 1, key);
}
