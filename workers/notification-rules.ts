/**
 * The notification rules (README "Notifications"): the one place that decides which events a
 * partner's contacts are told about, in the manner of SFTPGo's event manager — rules find
 * events, one action (workers/notification-mail.ts) mails them. Each rule turns ledger
 * facts into events with a stable key (what the event is about), so finding the same event
 * again, in this process or another, records nothing new.
 *
 * A rule's facts are codes, file names, batch ids, fingerprints and times — never record
 * content. A new kind of event is one more entry in {@link NOTIFICATION_RULES}.
 */
import type { Ledger, NewNotification, WaitingDocument } from '../gateway/core/ledger/index.js';
import { nowIso } from '../gateway/core/ledger/index.js';
import { ERROR_CODES } from '../gateway/core/errors.js';
import { isLate, localParts, parseSchedule } from '../gateway/admin/schedule.js';
import { expiryWarnings } from '../keys/key-expiry.js';

export interface RuleContext {
  ledger: Ledger;
  now: Date;
  /** Events that happened before this (ISO) are not mailed: the past before notifications were on, or long gone. */
  cutoff: string;
  /** PGW_ACK_OVERDUE_HOURS: an ack or result not picked up after this is overdue. */
  overdueHours: number;
  /** PGW_TIMEZONE: partners' expected-batch calendars are read in it. */
  timezone: string;
}

type Facts = Record<string, string | number | null>;

export interface NotificationRule {
  kind: string;
  find(ctx: RuleContext): Promise<NewNotification[]>;
  /** The subject when this is the only event in a mail. */
  title(facts: Facts): string;
  /** The event in words, for the mail's text. */
  text(facts: Facts): string;
}

const HOUR_MS = 3600_000;
const str = (v: unknown): string => (v === null || v === undefined ? '' : String(v));
const codeText = (code: string): string => (code in ERROR_CODES ? ERROR_CODES[code as keyof typeof ERROR_CODES].message : 'see the ack');

const rejected: NotificationRule = {
  kind: 'batch.rejected',
  async find({ ledger, cutoff }) {
    return (await ledger.notifications.rejectedSince(cutoff)).map((b) => ({
      // Per ack version: a batch reprocessed and rejected again is a new event.
      eventKey: `batch.rejected:${b.id}:v${b.ack_version}`, partnerId: b.partner_id, kind: 'batch.rejected', occurredAt: b.acked_at,
      facts: { batchId: b.id, fileName: b.file_name, lane: b.lane, code: b.error_code ?? 'internal.error', receivedAt: b.received_at, ackedAt: b.acked_at },
    }));
  },
  title: (f) => `batch rejected: ${str(f.fileName)} (${str(f.code)})`,
  text: (f) => `Batch ${str(f.fileName)} (id ${str(f.batchId)}${f.lane === 'test' ? ', test lane' : ''}), received ${str(f.receivedAt)}, `
    + `was rejected with ${str(f.code)}: ${codeText(str(f.code))}. The signed ack with the details is in your outbox.`,
};

/** An ack or a result document waiting for pickup past overdue. */
function documentOverdue(kind: 'ack' | 'result'): NotificationRule {
  const name = `${kind}.overdue`;
  return {
    kind: name,
    async find({ ledger, now, cutoff, overdueHours }) {
      const ms = overdueHours * HOUR_MS;
      const made = await ledger.notifications.waitingDocuments(kind, nowIso(new Date(Date.parse(cutoff) - ms)), nowIso(new Date(now.getTime() - ms)));
      return made.map((d: WaitingDocument) => ({
        eventKey: `${name}:${d.batch_id}:v${d.version}`, partnerId: d.partner_id, kind: name,
        occurredAt: nowIso(new Date(Date.parse(d.created_at) + ms)),
        facts: { batchId: d.batch_id, fileName: d.file_name, document: d.outbox_name, madeAt: d.created_at, overdueHours },
      }));
    },
    title: (f) => `${kind} waiting for pickup: ${str(f.document)}`,
    text: (f) => `The ${kind} ${str(f.document)} for batch ${str(f.fileName)} (id ${str(f.batchId)}), made ${str(f.madeAt)}, `
      + `has not been picked up for more than ${str(f.overdueHours)} hours: download it from your outbox (or check your webhook).`,
  };
}

const late: NotificationRule = {
  kind: 'batch.late',
  async find({ ledger, now, timezone }) {
    const last = await ledger.stats.lastReceived();
    const out: NewNotification[] = [];
    for (const p of await ledger.partners.list()) {
      if (p.status !== 'active' || !p.expected_schedule) continue;
      let due = false;
      try {
        const lastAt = last.get(p.id);
        due = isLate(parseSchedule(p.expected_schedule), now, timezone, lastAt ? new Date(lastAt) : null);
      } catch {
        continue; // a schedule the CLI would refuse today: the console shows it, nothing to mail
      }
      if (!due) continue;
      const date = localParts(now, timezone).date;
      out.push({
        eventKey: `batch.late:${p.id}:${date}`, partnerId: p.id, kind: 'batch.late', occurredAt: nowIso(now),
        facts: { date, schedule: p.expected_schedule, timezone, lastReceivedAt: last.get(p.id) ?? null },
      });
    }
    return out;
  },
  title: (f) => `no batch yet on ${str(f.date)}`,
  text: (f) => `No batch has arrived on ${str(f.date)} although one is expected (${str(f.schedule)}, ${str(f.timezone)}). `
    + `Last batch received: ${f.lastReceivedAt ? str(f.lastReceivedAt) : 'none'}.`,
};

const keyExpiring: NotificationRule = {
  kind: 'key.expiring',
  async find({ ledger, now }) {
    // Once per threshold (30, 14, 7 days): a key first seen at 10 days left is told once, for 14.
    return expiryWarnings(await ledger.pgpKeys.partnerKeys(), now).filter((w) => w.owner === 'partner' && w.partnerId).map((w) => ({
      eventKey: `key.expiring:${w.fingerprint}:${w.threshold}`, partnerId: w.partnerId!, kind: 'key.expiring', occurredAt: nowIso(now),
      facts: { fingerprint: w.fingerprint.toUpperCase(), expiresAt: w.at, daysLeft: w.daysLeft, threshold: w.threshold },
    }));
  },
  title: (f) => `your key expires in ${str(f.daysLeft)} days`,
  text: (f) => `Your OpenPGP key ${str(f.fingerprint)} expires at ${str(f.expiresAt)} (in ${str(f.daysLeft)} days). Register its successor `
    + 'before then: upload newkey.asc and newkey.asc.sig (signed with your current key) to /keys/incoming/, or send both to PUT /v1/keys.',
};

/**
 * A document Babybalance sent the partner (outbound_documents) is in their outbox: told once
 * per document, as soon as it is published and still not downloaded or pushed (one fetched
 * before the notifier looks is not mailed).
 */
const documentWaiting: NotificationRule = {
  kind: 'document.waiting',
  async find({ ledger, cutoff }) {
    return (await ledger.notifications.outboundWaiting(cutoff)).map((d) => ({
      eventKey: `document.waiting:${d.id}`, partnerId: d.partner_id, kind: 'document.waiting', occurredAt: d.published_at,
      facts: { documentId: d.id, document: d.outbox_name, publishedAt: d.published_at },
    }));
  },
  title: (f) => `document waiting: ${str(f.document)}`,
  text: (f) => `Babybalance sent you the document ${str(f.document)} (id ${str(f.documentId)}) at ${str(f.publishedAt)}. `
    + `It is waiting in your outbox: download it over SFTP from /outbox/, or with GET /v1/documents/${str(f.documentId)}.`,
};

export const NOTIFICATION_RULES: readonly NotificationRule[] = [rejected, documentOverdue('ack'), documentOverdue('result'), late, keyExpiring, documentWaiting];

export function ruleFor(kind: string): NotificationRule | undefined {
  return NOTIFICATION_RULES.find((r) => r.kind === kind);
}

/** Every rule's events at `ctx.now`. */
export async function findEvents(ctx: RuleContext): Promise<NewNotification[]> {
  return (await Promise.all(NOTIFICATION_RULES.map((r) => r.find(ctx)))).flat();
}
