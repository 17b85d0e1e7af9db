/**
 * The one place that turns the configured queue prefix into Redis key names.
 *
 * Glossary:
 * - **hash tag**: the part of a key between the first `{` and the next `}` (when not
 *   empty). Redis Cluster hashes only that part, so every key with the same tag lies in one
 *   slot, on one node — which BullMQ's multi-key Lua scripts require.
 * - **key prefix**: what BullMQ puts before `<queue>:<key>`: the configured
 *   `PGW_QUEUE_PREFIX` wrapped in braces (`pgw` → `{pgw}`), or kept as it is when it
 *   already carries a tag (`pgw-{eu}`).
 */
import { createHmac } from 'node:crypto';
import type { RedisConnection } from './connection.js';
import { redisNodes, waitForReady } from './connection.js';

/** True when `s` holds a Redis hash tag: `{`, then at least one character, then `}`. */
export function hasHashTag(s: string): boolean {
  const open = s.indexOf('{');
  if (open < 0) return false;
  const close = s.indexOf('}', open + 1);
  return close > open + 1;
}

/** BullMQ `prefix` for the configured queue prefix: `pgw` → `{pgw}`; idempotent. */
export function queueKeyPrefix(configured: string): string {
  return hasHashTag(configured) ? configured : `{${configured}}`;
}

/**
 * SCAN/KEYS pattern matching every key of the installation (or those under `under`, e.g. `sftp-bans:ban:`). Braces are literal in Redis
 * glob patterns; the glob characters `*?[]\` are escaped should a prefix ever hold one.
 */
export function queueKeyPattern(configured: string, under = ''): string {
  return `${queueKeyPrefix(configured).replace(/[*?[\]\\]/g, '\\$&')}:${under}*`;
}

/**
 * Every key of the installation. On a Cluster each master is scanned (SCAN sees one node
 * only); the hash tag puts them all on one of them.
 */
export async function scanQueueKeys(conn: RedisConnection, configured: string): Promise<string[]> {
  // A Cluster knows its nodes only once connected.
  if (!(await waitForReady(conn, 10_000))) throw new Error('Redis is not reachable: cannot list the queue keys');
  return scanKeys(conn, queueKeyPattern(configured));
}

/** Keys matching a SCAN `pattern` on every master. */
export async function scanKeys(conn: RedisConnection, pattern: string): Promise<string[]> {
  const keys = new Set<string>();
  for (const node of redisNodes(conn, 'master')) {
    let cursor = '0';
    do {
      const [next, batch] = await node.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
      cursor = next;
      for (const k of batch) keys.add(k);
    } while (cursor !== '0');
  }
  return [...keys];
}

/**
 * A client identifier (an address, a token id) as it may appear in a key name: a keyed hash
 * (`key` derived from the master key), so Redis holds no addresses.
 */
export function keyedName(key: Buffer, value: string): string {
  return createHmac('sha256', key).update(value).digest('hex').slice(0, 32);
}
