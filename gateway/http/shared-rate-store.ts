/**
 * An express-rate-limit store on Redis, so that the partner API's limits count across every
 * gateway process behind a load balancer (per process, a client's budget would be multiplied
 * by the number of gateways). One key per client and window: INCR, with the window set as
 * expiry by the first hit (one Lua call, so a crash cannot leave a key without expiry).
 * Client keys (addresses, token ids) are stored as keyed hashes. When Redis does not
 * answer, the limit is counted in this process's memory instead: the API stays up and
 * limited.
 */
import { MemoryStore, type ClientRateLimitInfo, type Options, type Store } from 'express-rate-limit';
import type { Logger } from '../core/logger.js';
import { keyedName, queueKeyPrefix } from '../core/redis/key-names.js';
import type { RedisConnection } from '../core/redis/connection.js';

const INCREMENT = `
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return {n, redis.call('PTTL', KEYS[1])}`;

export interface SharedRateDeps {
  redis: RedisConnection;
  queuePrefix: string;
  /** Key of the client-key hash (DataKeys.derivedKey). */
  clientKey: Buffer;
  log: Logger;
}

export class SharedRateStore implements Store {
  private windowMs = 60_000;
  private readonly fallback = new MemoryStore();
  private readonly keyPrefix: string;
  private warned = false;

  /** `name`: which limit (one store per limiter, as express-rate-limit requires). */
  constructor(private readonly d: SharedRateDeps, name: string) {
    this.keyPrefix = `${queueKeyPrefix(d.queuePrefix)}:http-rate:${name}:`;
  }

  init(options: Options): void {
    this.windowMs = options.windowMs;
    this.fallback.init(options);
  }

  async increment(key: string): Promise<ClientRateLimitInfo> {
    try {
      const [hits, ttl] = await this.d.redis.eval(INCREMENT, 1, this.key(key), String(this.windowMs)) as [number, number];
      return { totalHits: hits, resetTime: new Date(Date.now() + (ttl > 0 ? ttl : this.windowMs)) };
    } catch (err) {
      if (!this.warned) this.d.log.warn('rate limits counted per process while Redis does not answer', { err });
      this.warned = true;
      return this.fallback.increment(key);
    }
  }

  async get(key: string): Promise<ClientRateLimitInfo | undefined> {
    try {
      const [hits, ttl] = await Promise.all([this.d.redis.get(this.key(key)), this.d.redis.pttl(this.key(key))]);
      return hits === null ? undefined : { totalHits: Number(hits), resetTime: new Date(Date.now() + (ttl > 0 ? ttl : this.windowMs)) };
    } catch {
      return this.fallback.get(key);
    }
  }

  async decrement(key: string): Promise<void> {
    await this.d.redis.decr(this.key(key)).catch(() => this.fallback.decrement(key));
  }

  async resetKey(key: string): Promise<void> {
    await this.d.redis.del(this.key(key)).catch(() => this.fallback.resetKey(key));
  }

  shutdown(): void {
    this.fallback.shutdown();
  }

  private key(clientKey: string): string {
    return this.keyPrefix + keyedName(this.d.clientKey, clientKey);
  }
}
