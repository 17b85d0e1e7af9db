/**
 * Failed-login bans shared by every gateway process of an installation, through Redis.
 * Behind a load balancer each gateway process would otherwise count only the failures it
 * saw itself, and a banned address would just be sent to another process: the budget of a
 * password-less key-guessing client would be multiplied by the number of gateways.
 *
 * Failures of an address are counted in Redis (core/redis/counter.ts: the count and its
 * window's expiry in one script, so no key is left without expiry); the process
 * whose failure reaches the limit bans the address for everyone — a key with the ban's
 * expiry, announced on a channel that every gateway process subscribes to, so that the
 * check at TCP accept stays a synchronous map lookup. Repeat bans double, as in
 * {@link BanList}. Addresses appear in Redis only as keyed hashes (key derived from the
 * master key). When Redis is unreachable the local {@link BanList} still counts and bans.
 */
import type { Logger } from '../core/logger.js';
import { keyedName, queueKeyPattern, queueKeyPrefix, scanKeys } from '../core/redis/key-names.js';
import type { RedisConnection } from '../core/redis/connection.js';
import { countHit } from '../core/redis/counter.js';
import { BanList, DEFAULT_BAN_OPTIONS, type BanListOptions, type BanPolicy } from './ban-list.js';

/** Remote bans remembered at most (a flood of distinct addresses cannot grow memory). */
const MAX_REMOTE = 100_000;

export interface SharedBanDeps {
  /** Commands (a producer connection). */
  redis: RedisConnection;
  /** A connection of its own for the subscription (a subscribed connection runs nothing else). */
  subscriber: RedisConnection;
  /** The configured PGW_QUEUE_PREFIX: bans live beside the queues, under the same hash tag. */
  queuePrefix: string;
  /** Key of the address hash (DataKeys.derivedKey). */
  addressKey: Buffer;
  options: Partial<BanListOptions>;
  log: Logger;
  now?: () => number;
}

export class SharedBanList implements BanPolicy {
  private readonly local: BanList;
  private readonly opts: BanListOptions;
  /** Address hash → banned until (ms), as announced by any gateway process. */
  private readonly remote = new Map<string, number>();
  private readonly prefix: string;
  private readonly now: () => number;

  private constructor(private readonly d: SharedBanDeps) {
    this.opts = { ...DEFAULT_BAN_OPTIONS, ...d.options };
    this.now = d.now ?? Date.now;
    this.local = new BanList(d.options, this.now);
    this.prefix = `${queueKeyPrefix(d.queuePrefix)}:sftp-bans`;
  }

  /**
   * Subscribe to ban announcements and load the bans in force — in the background: the
   * gateway starts (and takes uploads) while Redis is down, and ioredis subscribes again
   * after a reconnect.
   */
  static async start(d: SharedBanDeps): Promise<SharedBanList> {
    const b = new SharedBanList(d);
    d.subscriber.on('message', (channel: string, message: string) => {
      if (channel === b.prefix) b.remember(message);
    });
    d.subscriber.subscribe(b.prefix)
      .then(() => b.loadActive())
      .catch((err: unknown) => d.log.warn('shared SFTP bans unavailable: this process bans on its own failure counts', { err }));
    return b;
  }

  isBanned(ip: string): boolean {
    return this.local.isBanned(ip) || (this.remote.get(this.hash(ip)) ?? 0) > this.now();
  }

  recordFailure(ip: string): void {
    this.local.recordFailure(ip);
    this.countShared(this.hash(ip)).catch((err: unknown) => this.d.log.warn('could not count a failed login in Redis', { err }));
  }

  recordSuccess(ip: string): void {
    this.local.recordSuccess(ip);
    this.d.redis.del(this.key('fail', this.hash(ip))).catch(() => {});
  }

  async close(): Promise<void> {
    this.d.subscriber.disconnect();
  }

  private async countShared(h: string): Promise<void> {
    const r = this.d.redis;
    const failKey = this.key('fail', h);
    const failures = await countHit(r, failKey, this.opts.windowMs);
    // Exactly one process sees the count reach the limit.
    if (failures.count !== this.opts.maxFailures) return;
    await r.del(failKey);
    // A strike is remembered until memoryMs pass without another one.
    const strikes = (await countHit(r, this.key('strikes', h), this.opts.memoryMs, true)).count;
    const duration = Math.min(this.opts.maxBanMs, this.opts.banMs * 2 ** (strikes - 1));
    const until = this.now() + duration;
    await r.set(this.key('ban', h), String(until), 'PX', duration);
    await r.publish(this.prefix, `${h} ${until}`);
    this.d.log.info('address banned for every gateway process', { banSeconds: Math.round(duration / 1000), strikes });
  }

  /** Bans announced before this process subscribed. */
  private async loadActive(): Promise<void> {
    for (const k of await scanKeys(this.d.redis, queueKeyPattern(this.d.queuePrefix, 'sftp-bans:ban:'))) {
      const until = await this.d.redis.get(k);
      if (until) this.remember(`${k.slice(k.lastIndexOf(':') + 1)} ${until}`);
    }
  }

  private remember(message: string): void {
    const [h, until] = message.split(' ');
    const t = Number(until);
    if (!h || !Number.isFinite(t)) return;
    if (this.remote.size >= MAX_REMOTE) {
      const now = this.now();
      for (const [k, v] of this.remote) if (v <= now) this.remote.delete(k);
      if (this.remote.size >= MAX_REMOTE) this.remote.delete(this.remote.keys().next().value!);
    }
    this.remote.set(h, t);
  }

  private hash(ip: string): string {
    return keyedName(this.d.addressKey, ip);
  }

  private key(kind: 'fail' | 'strikes' | 'ban', h: string): string {
    return `${this.prefix}:${kind}:${h}`;
  }
}
