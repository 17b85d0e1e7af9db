/**
 * The notification engine, run by worker processes: every period it finds due events
 * (notification-rules.ts), records each once in the ledger, claims what is due and mails it
 * (notification-mail.ts) — one digest per partner per run, logged once per mail.
 *
 * Once per event: the event key is the ledger row's primary key, so a restart or a second
 * worker finding the same event records nothing new; a row is claimed by one conditional
 * write before it is mailed, so two senders never mail it both. Only the process holding
 * the ledger lease `notifier` runs (like the reconciler), which saves the others the scan.
 * One case sends twice: a process that dies after the SMTP server took the mail and before
 * it marked the row sent leaves it claimed; once the claim runs out (CLAIM_MS) the next run
 * mails it again — at most once more per such crash.
 *
 * An SMTP server that is down or refuses TLS: the mail's events are due again after a
 * backoff (PGW_NOTIFY_BACKOFF_MS, doubling, at most an hour) until PGW_NOTIFY_ATTEMPTS;
 * then, or at once when the server refuses the mail itself, they are `failed` (logged).
 */
import type { Config } from '../gateway/core/config.js';
import type { Ledger, NotificationRow } from '../gateway/core/ledger/index.js';
import { nowIso } from '../gateway/core/ledger/index.js';
import { isPgwError, errorInfo, type ErrorCode } from '../gateway/core/errors.js';
import type { Logger } from '../gateway/core/logger.js';
import { findEvents } from './notification-rules.js';
import { LeasedLoop } from './leased-loop.js';
import { composeDigest, SmtpMailer, type Mailer } from './notification-mail.js';

export const NOTIFIER_LEASE = 'notifier';
/** How long a sender holds claimed rows: longer than any one mail can take (SMTP timeouts are 15-30 s). */
export const CLAIM_MS = 5 * 60_000;
/** Events older than this are not looked for (a worker down for longer does not mail the distant past). */
const LOOKBACK_MS = 7 * 86_400_000;
/** Finished rows are kept this long (past the 30-day key window and the lookback, so nothing is found twice). */
const KEEP_MS = 45 * 86_400_000;
const MAX_BACKOFF_MS = 3600_000;

export interface NotifierDeps {
  ledger: Ledger;
  settings: Config['notifications'];
  /** PGW_ACK_OVERDUE_HOURS. */
  overdueHours: number;
  /** PGW_TIMEZONE. */
  timezone: string;
  log: Logger;
  /** This process in the lease and on claimed rows (host, pid, random). */
  holder: string;
  /** Made per run from `settings` unless given. */
  mailer?: () => Mailer;
}

export interface NotifyReport {
  recorded: number;
  mailed: number;
  /** Events carried by the mails sent. */
  events: number;
  retrying: number;
  failed: number;
  skipped: number;
}

export class Notifier {
  private readonly loop: LeasedLoop;

  constructor(private readonly d: NotifierDeps) {
    this.loop = new LeasedLoop({ ledger: d.ledger, log: d.log, lease: NOTIFIER_LEASE, holder: d.holder, failedMessage: 'notification run failed; the next one retries', run: () => this.runOnce() });
  }

  async runOnce(now = new Date()): Promise<NotifyReport> {
    const { ledger } = this.d;
    const report: NotifyReport = { recorded: 0, mailed: 0, events: 0, retrying: 0, failed: 0, skipped: 0 };
    const since = await ledger.notifications.since(now);
    const lookback = nowIso(new Date(now.getTime() - LOOKBACK_MS));
    const cutoff = since > lookback ? since : lookback;
    report.recorded = await ledger.notifications.record(
      await findEvents({ ledger, now, cutoff, overdueHours: this.d.overdueHours, timezone: this.d.timezone }), now,
    );
    const claimed = await ledger.notifications.claimDue(this.d.holder, new Date(now.getTime() + CLAIM_MS), now);
    if (claimed.length > 0) {
      const byPartner = new Map<string, NotificationRow[]>();
      for (const r of claimed) byPartner.set(r.partner_id, [...(byPartner.get(r.partner_id) ?? []), r]);
      const mailer = (this.d.mailer ?? (() => new SmtpMailer(this.d.settings)))();
      try {
        for (const [partnerId, rows] of byPartner) await this.mail(mailer, partnerId, rows, report, now);
      } finally {
        mailer.close();
      }
    }
    await ledger.notifications.purge(new Date(now.getTime() - KEEP_MS));
    return report;
  }

  private async mail(mailer: Mailer, partnerId: string, rows: NotificationRow[], report: NotifyReport, now: Date): Promise<void> {
    const { ledger, log, holder } = this.d;
    const keys = rows.map((r) => r.event_key);
    const kinds = [...new Set(rows.map((r) => r.kind))];
    const to = await ledger.notifications.contacts(partnerId);
    if (to.length === 0) {
      await ledger.notifications.markSkipped(keys, holder, 'notify.no_contacts');
      report.skipped += rows.length;
      log.info('notification not sent: the partner has no contact address', { partner: partnerId, events: rows.length, kinds, code: 'notify.no_contacts' });
      return;
    }
    try {
      const messageId = await mailer.send({ to, ...composeDigest(partnerId, rows) });
      await ledger.notifications.markSent(keys, holder, messageId, new Date());
      report.mailed++;
      report.events += rows.length;
      log.info('notification mailed', { partner: partnerId, events: rows.length, kinds, recipients: to.length, messageId });
    } catch (err) {
      const code: ErrorCode = isPgwError(err) ? err.code : 'notify.smtp_unavailable';
      const attempts = Math.max(...rows.map((r) => r.attempts)) + 1;
      const retry = errorInfo(code).retryable === true && attempts < this.d.settings.attempts;
      const retryAt = retry ? new Date(now.getTime() + Math.min(this.d.settings.backoffMs * 2 ** (attempts - 1), MAX_BACKOFF_MS)) : null;
      await ledger.notifications.markFailed(keys, holder, code, retryAt);
      if (retry) report.retrying += rows.length;
      else report.failed += rows.length;
      const fields = { partner: partnerId, events: rows.length, kinds, attempt: attempts, code, ...(retryAt ? { retryAt: nowIso(retryAt) } : {}) };
      if (retry) log.warn('notification not mailed; trying again later', fields);
      else log.error('notification given up', fields);
    }
  }

  /** Run now, then every `intervalMs`, while this process holds (or takes) the lease. */
  start(intervalMs: number): void {
    this.loop.start(intervalMs, Math.max(3 * intervalMs, CLAIM_MS));
  }

  close(): Promise<void> {
    return this.loop.close();
  }
}
