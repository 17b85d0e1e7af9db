/**
 * An express-rate-limit store on Redis, so that the partner API's limits count across every
 * gateway process behind a load balancer (per process, a client's budget would be multiplied
 * by the number of gateways). One counter per client and window (core/redis/counter.ts: the
 * count and its expiry set in one script, so a crash cannot leave a key without expiry).
 * Client keys (addresses, token ids) are stored as keyed hashes. When Redis does not
 * answer, the limit is counted in this process's memory instead: the API stays up and
 * limited.
 */
import { MemoryStore, type ClientRateLimitInfo, type Options, type Store } from 'express-rate-limit';
import type { Logger } from '../core/logger.js';
import { keyedName, queueKeyPrefix } from '../core/redis/key-names.js';
import type { RedisConnection } from '../core/redis/connection.js';
import { countHit, uncountHit } from '../core/redis/counter.js';

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
      const { count, ttlMs } = await countHit(this.d.redis, this.key(key), this.windowMs);
      return { totalHits: count, resetTime: new Date(Date.now() + ttlMs) };
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
    await uncountHit(this.d.redis, this.key(key)).catch(() => this.fallback.decrement(key));
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
