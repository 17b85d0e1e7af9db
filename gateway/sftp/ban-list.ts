/**
 * Failed-authentication throttling: an address that fails too often within a window is
 * banned for a while, and each further ban of the same address lasts twice as long (up
 * to a cap). Banned addresses are dropped at TCP accept, before any SSH work is done.
 * Other addresses are unaffected.
 *
 * In-memory per gateway process; `pgw start` wraps it in a SharedBanList (shared-ban-list.ts) (Redis) so
 * that several gateway processes behind one address count and ban together.
 */

export interface BanPolicy {
  /** True while `ip` is banned; the server then drops its connections at once. */
  isBanned(ip: string): boolean;
  /** A connection from `ip` that tried credentials and never authenticated. */
  recordFailure(ip: string): void;
  /** A successful login from `ip` (clears its failure count, not an active ban). */
  recordSuccess(ip: string): void;
}

export interface BanListOptions {
  /** Failed connections within `windowMs` that trigger a ban. */
  maxFailures: number;
  windowMs: number;
  /** First ban; each further ban of the same address doubles, up to `maxBanMs`. */
  banMs: number;
  maxBanMs: number;
  /** How long a ban "strike" is remembered for the doubling. */
  memoryMs: number;
  /** Cap on tracked addresses (oldest forgotten first) so a scan cannot grow memory. */
  maxTracked: number;
}

export const DEFAULT_BAN_OPTIONS: BanListOptions = {
  maxFailures: 20,
  windowMs: 10 * 60_000,
  banMs: 60_000,
  maxBanMs: 60 * 60_000,
  memoryMs: 24 * 3600_000,
  maxTracked: 100_000,
};

interface Entry {
  failures: number[];
  bannedUntil: number;
  strikes: number;
  lastStrikeAt: number;
}

export class BanList implements BanPolicy {
  private readonly opts: BanListOptions;
  private readonly entries = new Map<string, Entry>();

  constructor(opts: Partial<BanListOptions> = {}, private readonly now: () => number = Date.now) {
    this.opts = { ...DEFAULT_BAN_OPTIONS, ...opts };
  }

  isBanned(ip: string): boolean {
    const e = this.entries.get(ip);
    return e !== undefined && e.bannedUntil > this.now();
  }

  /** Milliseconds left on `ip`'s ban (0 when not banned). */
  banRemainingMs(ip: string): number {
    const e = this.entries.get(ip);
    return e ? Math.max(0, e.bannedUntil - this.now()) : 0;
  }

  recordFailure(ip: string): void {
    const t = this.now();
    let e = this.entries.get(ip);
    if (!e) {
      if (this.entries.size >= this.opts.maxTracked) this.evictOldest();
      e = { failures: [], bannedUntil: 0, strikes: 0, lastStrikeAt: 0 };
      this.entries.set(ip, e);
    }
    e.failures = e.failures.filter((f) => t - f < this.opts.windowMs);
    e.failures.push(t);
    if (e.failures.length >= this.opts.maxFailures && e.bannedUntil <= t) {
      if (t - e.lastStrikeAt > this.opts.memoryMs) e.strikes = 0;
      const duration = Math.min(this.opts.maxBanMs, this.opts.banMs * 2 ** e.strikes);
      e.strikes += 1;
      e.lastStrikeAt = t;
      e.bannedUntil = t + duration;
      e.failures = [];
    }
  }

  recordSuccess(ip: string): void {
    const e = this.entries.get(ip);
    if (e) e.failures = [];
  }

  private evictOldest(): void {
    const first = this.entries.keys().next();
    if (!first.done) this.entries.delete(first.value);
  }
}
