/**
 * Outbound documents in the ledger (see document-schema.ts for the words). Every change is a
 * conditional update, so two gateway processes (an HTTPS download and an SFTP one, a push and
 * a withdrawal) cannot both move one document.
 */
import type { Kysely, Selectable } from 'kysely';
import type { DB } from './schema.js';
import type { OutboundDocumentsTable } from './document-schema.js';
import { nowIso, type LedgerHandle } from './ledger.js';

export type OutboundDocument = Selectable<OutboundDocumentsTable>;

export type NewOutboundDocument = Pick<OutboundDocumentsTable,
  'id' | 'partner_id' | 'name' | 'outbox_name' | 'identity' | 'plain_bytes' | 'sha256' | 'signed_by' | 'encrypted_to' | 'sent_by'>;

export interface DocumentFilter {
  partnerId?: string;
  /** Published, open, neither downloaded nor pushed. */
  pending?: boolean;
  limit?: number;
  /** Rows to skip (the console's pages). */
  offset?: number;
}

/** Whether a unique-index violation (the partner already has an open document of that name). */
function isUniqueViolation(err: unknown): boolean {
  const e = err as { code?: string; message?: string };
  return e.code === '23505' || e.code === 'SQLITE_CONSTRAINT_UNIQUE' || /UNIQUE constraint failed/.test(e.message ?? '');
}

export class DocumentRepo {
  constructor(private readonly h: LedgerHandle) {}

  private get db(): Kysely<DB> {
    return this.h.db;
  }

  async get(id: string): Promise<OutboundDocument | undefined> {
    return this.db.selectFrom('outbound_documents').selectAll().where('id', '=', id).executeTakeFirst();
  }

  /** The partner's open document of that name, if any. */
  async openByName(partnerId: string, name: string): Promise<OutboundDocument | undefined> {
    return this.db.selectFrom('outbound_documents').selectAll()
      .where('partner_id', '=', partnerId).where('name', '=', name).where('closed_at', 'is', null).executeTakeFirst();
  }

  async openByOutboxName(partnerId: string, outboxName: string): Promise<OutboundDocument | undefined> {
    return this.db.selectFrom('outbound_documents').selectAll()
      .where('partner_id', '=', partnerId).where('outbox_name', '=', outboxName).where('closed_at', 'is', null).executeTakeFirst();
  }

  /** Record a document whose file exists (queued: not yet in the outbox); false when the name is taken. */
  async insert(doc: NewOutboundDocument): Promise<boolean> {
    try {
      await this.db.insertInto('outbound_documents').values({
        ...doc, created_at: nowIso(), published_at: null, first_downloaded_at: null, downloaded_via: null, download_count: 0,
        pushed_at: null, push_attempts: 0, push_last_code: null, push_failed_at: null, closed_at: null, closed_reason: null,
      }).execute();
      return true;
    } catch (err) {
      if (isUniqueViolation(err)) return false;
      throw err;
    }
  }

  async markPublished(id: string): Promise<void> {
    await this.db.updateTable('outbound_documents').set({ published_at: nowIso() }).where('id', '=', id).where('published_at', 'is', null).execute();
  }

  /** A complete download (SFTP or HTTPS): the delivery receipt. */
  async markDownloaded(id: string, via: 'sftp' | 'https'): Promise<void> {
    const at = nowIso();
    await this.h.writeTx(async (tx) => {
      const row = await tx.selectFrom('outbound_documents').select(['first_downloaded_at', 'download_count']).where('id', '=', id).executeTakeFirst();
      if (!row) return;
      await tx.updateTable('outbound_documents').set({
        first_downloaded_at: row.first_downloaded_at ?? at, downloaded_via: row.first_downloaded_at ? undefined : via, download_count: row.download_count + 1,
      }).where('id', '=', id).execute();
    });
  }

  async recordPush(id: string, result: { delivered: boolean; code: string | null }): Promise<void> {
    await this.h.writeTx(async (tx) => {
      const row = await tx.selectFrom('outbound_documents').select(['push_attempts', 'pushed_at', 'push_failed_at']).where('id', '=', id).executeTakeFirst();
      if (!row || row.pushed_at || row.push_failed_at) return;
      await tx.updateTable('outbound_documents').set({
        push_attempts: row.push_attempts + 1, push_last_code: result.code, pushed_at: result.delivered ? nowIso() : null,
      }).where('id', '=', id).execute();
    });
  }

  async markPushFailed(id: string, code: string): Promise<void> {
    await this.db.updateTable('outbound_documents').set({ push_failed_at: nowIso(), push_last_code: code })
      .where('id', '=', id).where('pushed_at', 'is', null).where('push_failed_at', 'is', null).execute();
  }

  /** Close an open document (withdrawn or expired); false when it was closed already. */
  async close(id: string, reason: 'key_revoked' | 'expired'): Promise<boolean> {
    const r = await this.db.updateTable('outbound_documents').set({ closed_at: nowIso(), closed_reason: reason })
      .where('id', '=', id).where('closed_at', 'is', null).executeTakeFirst();
    return Number(r.numUpdatedRows) === 1;
  }

  /** Retention: forget the name a sender gave (it may say whom a document is about); the id and hashes stay. */
  async anonymise(id: string): Promise<void> {
    await this.db.updateTable('outbound_documents').set({ name: `expired-${id}`, outbox_name: `expired-${id}` }).where('id', '=', id).execute();
  }

  /** Newest first. */
  async list(f: DocumentFilter = {}): Promise<OutboundDocument[]> {
    let q = this.db.selectFrom('outbound_documents').selectAll();
    if (f.partnerId) q = q.where('partner_id', '=', f.partnerId);
    if (f.pending) {
      q = q.where('closed_at', 'is', null).where('published_at', 'is not', null)
        .where('first_downloaded_at', 'is', null).where('pushed_at', 'is', null);
    }
    q = q.orderBy('created_at', 'desc').orderBy('id', 'desc').limit(f.limit ?? 100);
    return (f.offset ? q.offset(f.offset) : q).execute();
  }

  /** Open documents not yet in the outbox (a crash between the ledger row and the link). */
  async queued(limit = 500): Promise<OutboundDocument[]> {
    return this.db.selectFrom('outbound_documents').selectAll().where('published_at', 'is', null).where('closed_at', 'is', null)
      .orderBy('created_at').limit(limit).execute();
  }

  /** Published, open documents of partners with a webhook, neither pushed nor given up. */
  async undelivered(limit = 500): Promise<OutboundDocument[]> {
    return this.db.selectFrom('outbound_documents').innerJoin('partners', 'partners.id', 'outbound_documents.partner_id')
      .selectAll('outbound_documents')
      .where('partners.webhook_url', 'is not', null).where('partners.status', '=', 'active')
      .where('outbound_documents.published_at', 'is not', null).where('outbound_documents.closed_at', 'is', null)
      .where('outbound_documents.pushed_at', 'is', null).where('outbound_documents.push_failed_at', 'is', null)
      .where('outbound_documents.first_downloaded_at', 'is', null)
      .orderBy('outbound_documents.created_at').limit(limit).execute();
  }

  /** Open documents created before `before` (retention). */
  async openBefore(before: string, limit = 1000): Promise<OutboundDocument[]> {
    return this.db.selectFrom('outbound_documents').selectAll().where('closed_at', 'is', null).where('created_at', '<', before)
      .orderBy('created_at').limit(limit).execute();
  }

  /** Open, not yet picked-up documents encrypted to one of these key fingerprints. */
  async openEncryptedTo(partnerId: string, fingerprints: string[]): Promise<OutboundDocument[]> {
    if (fingerprints.length === 0) return [];
    return this.db.selectFrom('outbound_documents').selectAll().where('partner_id', '=', partnerId)
      .where('closed_at', 'is', null).where('first_downloaded_at', 'is', null).where('pushed_at', 'is', null)
      .where('encrypted_to', 'in', fingerprints).execute();
  }

  /** Per partner: published, open documents not picked up, and how many of them were published before `overdueBefore`. */
  async waitingByPartner(overdueBefore: string): Promise<{ partner_id: string; waiting: number; overdue: number }[]> {
    const rows = await this.db.selectFrom('outbound_documents').select(['partner_id', 'published_at'])
      .where('closed_at', 'is', null).where('published_at', 'is not', null)
      .where('first_downloaded_at', 'is', null).where('pushed_at', 'is', null).execute();
    const by = new Map<string, { partner_id: string; waiting: number; overdue: number }>();
    for (const r of rows) {
      const e = by.get(r.partner_id) ?? { partner_id: r.partner_id, waiting: 0, overdue: 0 };
      e.waiting++;
      if (r.published_at! < overdueBefore) e.overdue++;
      by.set(r.partner_id, e);
    }
    return [...by.values()];
  }
}
