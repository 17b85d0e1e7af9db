/**
 * A periodic job that must run in one process at a time (the reconciler, the notifier): each
 * tick first takes or renews a ledger lease, and runs only while this process holds it. A
 * tick that finds the previous run still going does nothing, so runs never overlap here.
 */
import type { Ledger } from '../gateway/core/ledger/index.js';
import type { Logger } from '../gateway/core/logger.js';

export interface LeasedLoopDeps {
  ledger: Ledger;
  log: Logger;
  /** The lease name; also the subject of the "lease taken" log lines. */
  lease: string;
  /** This process's id in the lease (host, pid, random). */
  holder: string;
  /** The log line when a run throws (the next tick retries). */
  failedMessage: string;
  run: () => Promise<unknown>;
}

export class LeasedLoop {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<unknown> | null = null;
  private leading = false;

  constructor(private readonly d: LeasedLoopDeps) {}

  /** Run now, then every `intervalMs`; `ttlMs` is how long the lease outlives a silent leader. */
  start(intervalMs: number, ttlMs: number): void {
    const tick = () => {
      this.running ??= this.lead(ttlMs)
        .then((leader) => (leader ? this.d.run() : null))
        .catch((err) => this.d.log.warn(this.d.failedMessage, { err }))
        .finally(() => { this.running = null; });
    };
    tick();
    this.timer = setInterval(tick, intervalMs);
    this.timer.unref();
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.running;
    // Hand over at once rather than after expiry (a killed process cannot; expiry covers it).
    if (this.leading) await this.d.ledger.leases.release(this.d.lease, this.d.holder).catch(() => {});
  }

  private async lead(ttlMs: number): Promise<boolean> {
    const leader = await this.d.ledger.leases.acquire(this.d.lease, this.d.holder, ttlMs);
    if (leader !== this.leading) this.d.log.info(leader ? `${this.d.lease} lease taken` : `${this.d.lease} lease held by another process`, { holder: this.d.holder });
    this.leading = leader;
    return leader;
  }
}
