/**
 * The audit chain's health for /metrics. Walking the whole chain reads every audit event,
 * too much for every scrape (Prometheus scrapes every 15-60 s and times out at 10 s), so a
 * scrape starts a verification only when the last one is older than {@link AUDIT_CHECK_MS}
 * and otherwise reports the last result. Only the very first scrape waits for one.
 *
 * It is the check `pgw audit verify` makes — chain and anchor (admin/audit-admin.ts) — so
 * deleting the newest events (which leaves a valid, shorter chain) shows too, within one
 * interval; each successful check moves the anchor to the head, as the command does.
 */
import type { Ledger } from '../core/ledger/index.js';
import type { DataDir } from '../core/data-dir.js';
import type { Logger } from '../core/logger.js';
import { verifyAudit } from '../admin/audit-admin.js';

/** How old the last verification may be before a scrape starts the next one. */
export const AUDIT_CHECK_MS = 10 * 60_000;

export interface AuditChainState {
  ok: boolean;
  /** Unix seconds of the check. */
  checkedAt: number;
}

export class AuditWatch {
  private last: AuditChainState | null = null;
  private running: Promise<void> | null = null;

  constructor(private readonly ledger: Ledger, private readonly dataDir: DataDir, private readonly log: Logger,
    private readonly intervalMs = AUDIT_CHECK_MS) {}

  /** The newest result; null until one verification has finished (or when none could run). */
  async state(): Promise<AuditChainState | null> {
    const stale = !this.last || Date.now() - this.last.checkedAt * 1000 >= this.intervalMs;
    if (stale) {
      this.running ??= this.check().finally(() => { this.running = null; });
      if (!this.last) await this.running;
    }
    return this.last;
  }

  private async check(): Promise<void> {
    try {
      const r = await verifyAudit(this.ledger, this.dataDir);
      this.last = { ok: r.ok, checkedAt: Math.floor(Date.now() / 1000) };
      if (!r.ok) this.log.error('audit chain broken', { brokenAt: r.brokenAt, problem: r.problem });
    } catch (err) {
      // No key, ledger unreachable: no verdict. The timestamp stops moving, which the
      // "not verified lately" alert sees.
      this.log.warn('audit chain check failed', { err });
    }
  }
}
