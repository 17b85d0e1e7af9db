/**
 * Partner contacts and the notification rows (see notification-schema.ts): recording an
 * event once, claiming due rows for one sender, marking the outcome; and the read-only
 * queries the notification rules ask (rejected batches, documents waiting for pickup).
 */
import type { Kysely, Selectable } from 'kysely';
import type { DB, NotificationsTable } from './schema.js';
import { nowIso, type LedgerHandle } from './ledger.js';

export type NotificationRow = Selectable<NotificationsTable>;

export interface NewNotification {
  eventKey: string;
  partnerId: string;
  kind: string;
  facts: Record<string, unknown>;
  occurredAt: string;
}

/** A partner document (ack or result) not picked up: neither downloaded nor pushed. */
export interface WaitingDocument {
  batch_id: string;
  version: number;
  partner_id: string;
  file_name: string;
  outbox_name: string;
  created_at: string;
}

export class NotificationRepo {
  constructor(private readonly h: LedgerHandle) {}

  private get db(): Kysely<DB> {
    return this.h.db;
  }

  async addContact(partnerId: string, email: string): Promise<boolean> {
    const res = await this.db.insertInto('partner_contacts').values({ partner_id: partnerId, email, created_at: nowIso() })
      .onConflict((oc) => oc.doNothing()).executeTakeFirst();
    return Number(res.numInsertedOrUpdatedRows ?? 0) === 1;
  }

  async removeContact(partnerId: string, email: string): Promise<boolean> {
    const res = await this.db.deleteFrom('partner_contacts').where('partner_id', '=', partnerId).where('email', '=', email).executeTakeFirst();
    return Number(res.numDeletedRows) === 1;
  }

  async contacts(partnerId: string): Promise<string[]> {
    const rows = await this.db.selectFrom('partner_contacts').select('email').where('partner_id', '=', partnerId).orderBy('email').execute();
    return rows.map((r) => r.email);
  }

  /**
   * When notifications were first looked for in this ledger (made by the first process
   * that asks): events from before are not mailed, so enabling SMTP does not send the past.
   */
  async since(now = new Date()): Promise<string> {
    await this.db.insertInto('ledger_meta').values({ name: 'notifications_since', value: nowIso(now) })
      .onConflict((oc) => oc.doNothing()).execute();
    const row = await this.db.selectFrom('ledger_meta').select('value').where('name', '=', 'notifications_since').executeTakeFirstOrThrow();
    return row.value;
  }

  /** Record events not recorded before (the event key decides); returns the newly recorded ones. */
  async record(events: NewNotification[], now = new Date()): Promise<number> {
    let added = 0;
    for (const e of events) {
      const res = await this.db.insertInto('notifications').values({
        event_key: e.eventKey, partner_id: e.partnerId, kind: e.kind, facts: JSON.stringify(e.facts), occurred_at: e.occurredAt,
        created_at: nowIso(now), state: 'pending', attempts: 0, next_attempt_at: nowIso(now),
        claimed_by: null, claimed_until: null, last_code: null, sent_at: null, message_id: null,
      }).onConflict((oc) => oc.doNothing()).executeTakeFirst();
      added += Number(res.numInsertedOrUpdatedRows ?? 0);
    }
    return added;
  }

  /**
   * Claim every due row for `holder` until `until`: pending rows whose time has come, and
   * rows another sender claimed and never finished (it died). Each row is taken by one
   * conditional write, so two senders never both hold it.
   */
  async claimDue(holder: string, until: Date, now = new Date()): Promise<NotificationRow[]> {
    const at = nowIso(now);
    return this.h.writeTx(async (tx) => {
      const due = await tx.selectFrom('notifications').selectAll()
        .where((eb) => eb.or([
          eb.and([eb('state', '=', 'pending'), eb('next_attempt_at', '<=', at)]),
          eb.and([eb('state', '=', 'sending'), eb('claimed_until', '<=', at)]),
        ]))
        .orderBy('created_at').orderBy('event_key').limit(500).execute();
      const taken: NotificationRow[] = [];
      for (const r of due) {
        const res = await tx.updateTable('notifications').set({ state: 'sending', claimed_by: holder, claimed_until: nowIso(until) })
          .where('event_key', '=', r.event_key).where('state', '=', r.state)
          .where((eb) => (r.claimed_until === null ? eb('claimed_until', 'is', null) : eb('claimed_until', '=', r.claimed_until)))
          .executeTakeFirst();
        if (Number(res.numUpdatedRows) === 1) taken.push({ ...r, state: 'sending', claimed_by: holder, claimed_until: nowIso(until) });
      }
      return taken;
    });
  }

  async markSent(keys: string[], holder: string, messageId: string, now = new Date()): Promise<void> {
    if (keys.length === 0) return;
    await this.db.updateTable('notifications')
      .set({ state: 'sent', sent_at: nowIso(now), message_id: messageId, claimed_by: null, claimed_until: null })
      .where('event_key', 'in', keys).where('claimed_by', '=', holder).execute();
  }

  /** An attempt failed: due again at `retryAt`, or `failed` for good when null. */
  async markFailed(keys: string[], holder: string, code: string, retryAt: Date | null): Promise<void> {
    if (keys.length === 0) return;
    await this.db.updateTable('notifications')
      .set((eb) => ({
        state: retryAt ? 'pending' : 'failed', attempts: eb('attempts', '+', 1), last_code: code,
        next_attempt_at: retryAt ? nowIso(retryAt) : eb.ref('next_attempt_at'), claimed_by: null, claimed_until: null,
      }))
      .where('event_key', 'in', keys).where('claimed_by', '=', holder).execute();
  }

  async markSkipped(keys: string[], holder: string, code: string): Promise<void> {
    if (keys.length === 0) return;
    await this.db.updateTable('notifications').set({ state: 'skipped', last_code: code, claimed_by: null, claimed_until: null })
      .where('event_key', 'in', keys).where('claimed_by', '=', holder).execute();
  }

  async list(opts: { partnerId?: string; limit?: number } = {}): Promise<NotificationRow[]> {
    let q = this.db.selectFrom('notifications').selectAll();
    if (opts.partnerId) q = q.where('partner_id', '=', opts.partnerId);
    return q.orderBy('created_at', 'desc').orderBy('event_key').limit(opts.limit ?? 100).execute();
  }

  /** Rows finished before `before` (sent, failed, skipped) are forgotten. */
  async purge(before: Date): Promise<number> {
    const res = await this.db.deleteFrom('notifications').where('state', 'in', ['sent', 'failed', 'skipped'])
      .where('created_at', '<', nowIso(before)).executeTakeFirst();
    return Number(res.numDeletedRows);
  }

  /** Batches whose current ack rejects them, acked at or after `since`. */
  async rejectedSince(since: string): Promise<{ id: string; partner_id: string; file_name: string; lane: string; error_code: string | null; received_at: string; acked_at: string; ack_version: number }[]> {
    const rows = await this.db.selectFrom('batches')
      .select(['id', 'partner_id', 'file_name', 'lane', 'error_code', 'received_at', 'acked_at', 'ack_version'])
      .where('outcome', '=', 'rejected').where('acked_at', '>=', since).where('ack_version', 'is not', null)
      .orderBy('acked_at').execute();
    return rows as { id: string; partner_id: string; file_name: string; lane: string; error_code: string | null; received_at: string; acked_at: string; ack_version: number }[];
  }

  /**
   * Outbound documents (Babybalance → partner) published since `since` and still waiting:
   * open, neither downloaded nor pushed. Oldest first.
   */
  async outboundWaiting(since: string): Promise<{ id: string; partner_id: string; outbox_name: string; published_at: string }[]> {
    const rows = await this.db.selectFrom('outbound_documents').select(['id', 'partner_id', 'outbox_name', 'published_at'])
      .where('published_at', '>=', since).where('closed_at', 'is', null)
      .where('first_downloaded_at', 'is', null).where('pushed_at', 'is', null)
      .orderBy('published_at').execute();
    return rows as { id: string; partner_id: string; outbox_name: string; published_at: string }[];
  }

  /**
   * The current ack (or latest result) of each batch that was made between `from` and
   * `to` and has been neither downloaded nor delivered by webhook.
   */
  async waitingDocuments(kind: 'ack' | 'result', from: string, to: string): Promise<WaitingDocument[]> {
    const rows = kind === 'ack'
      ? await this.db.selectFrom('acks').innerJoin('batches', 'batches.id', 'acks.batch_id')
        .leftJoin('ack_pushes', (j) => j.onRef('ack_pushes.batch_id', '=', 'acks.batch_id').onRef('ack_pushes.version', '=', 'acks.version'))
        .select(['acks.batch_id', 'acks.version', 'batches.partner_id', 'batches.file_name', 'acks.outbox_name', 'acks.created_at'])
        .whereRef('acks.version', '=', 'batches.ack_version')
        .where('acks.first_downloaded_at', 'is', null).where('ack_pushes.delivered_at', 'is', null)
        .where('acks.created_at', '>=', from).where('acks.created_at', '<', to).execute()
      : await this.db.selectFrom('results').innerJoin('batches', 'batches.id', 'results.batch_id')
        .leftJoin('result_pushes', (j) => j.onRef('result_pushes.batch_id', '=', 'results.batch_id').onRef('result_pushes.version', '=', 'results.version'))
        .select(['results.batch_id', 'results.version', 'batches.partner_id', 'batches.file_name', 'results.outbox_name', 'results.created_at'])
        .where((eb) => eb('results.version', '=', eb.selectFrom('results as r2').select((e) => e.fn.max('r2.version').as('v')).whereRef('r2.batch_id', '=', 'results.batch_id')))
        .where('results.first_downloaded_at', 'is', null).where('result_pushes.delivered_at', 'is', null)
        .where('results.created_at', '>=', from).where('results.created_at', '<', to).execute();
    return rows as WaitingDocument[];
  }
}
