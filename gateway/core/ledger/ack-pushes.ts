/**
 * Where acks went after they were made: webhook pushes (one row per ack version, with
 * attempts and the outcome) and the list of acks a partner has not picked up yet.
 *
 * Glossary:
 * - **picked up**: downloaded (SFTP or HTTPS) or pushed to the partner's webhook with a 2xx
 *   answer. Either is a delivery receipt.
 */
import type { Kysely, Selectable } from 'kysely';
import type { DB, AckPushesTable, AcksTable, BatchesTable } from './schema.js';
import { nowIso, type LedgerHandle } from './ledger.js';

export type AckPushRow = Selectable<AckPushesTable>;

export type PartnerAck = Pick<AcksTable, 'batch_id' | 'version' | 'sha256' | 'outbox_name' | 'created_at' | 'first_downloaded_at' | 'download_count'>
  & Pick<BatchesTable, 'file_name' | 'lane' | 'channel' | 'outcome'> & { pushed_at: string | null };

/** What is pushed: an ack, or a result document (`result_pushes`, the same columns). */
export type PushKind = 'ack' | 'result';

export class AckPushRepo {
  /**
   * The push table of this kind. Both tables have the same columns, so the ack table's
   * type stands for either (the methods below that join `acks` are for acks only).
   */
  private readonly table: 'ack_pushes';
  /** The timeline step of an attempt: `ack-pushed` or `result-pushed`. */
  private readonly step: string;

  constructor(private readonly h: LedgerHandle, kind: PushKind = 'ack') {
    this.table = (kind === 'ack' ? 'ack_pushes' : 'result_pushes') as 'ack_pushes';
    this.step = `${kind}-pushed`;
  }

  private get db(): Kysely<DB> {
    return this.h.db;
  }

  async get(batchId: string, version: number): Promise<AckPushRow | undefined> {
    return this.db.selectFrom(this.table).selectAll().where('batch_id', '=', batchId).where('version', '=', version).executeTakeFirst();
  }

  async forBatch(batchId: string): Promise<AckPushRow[]> {
    return this.db.selectFrom(this.table).selectAll().where('batch_id', '=', batchId).orderBy('version').execute();
  }

  /** Record one attempt (creating the row on the first); never touches a finished row. */
  async recordAttempt(batchId: string, version: number, host: string, result: { status: number | null; code: string | null; delivered: boolean }): Promise<void> {
    const at = nowIso();
    await this.h.writeTx(async (tx) => {
      await tx.insertInto(this.table).values({
        batch_id: batchId, version, host, attempts: 0, last_attempt_at: null, last_status: null, last_code: null, delivered_at: null, failed_at: null,
      }).onConflict((oc) => oc.doNothing()).execute();
      const row = await tx.selectFrom(this.table).select(['attempts', 'delivered_at', 'failed_at'])
        .where('batch_id', '=', batchId).where('version', '=', version).executeTakeFirstOrThrow();
      if (row.delivered_at || row.failed_at) return;
      await tx.updateTable(this.table).set({
        attempts: row.attempts + 1, last_attempt_at: at, last_status: result.status, last_code: result.code,
        delivered_at: result.delivered ? at : null,
      }).where('batch_id', '=', batchId).where('version', '=', version).execute();
      await tx.insertInto('batch_events').values({
        batch_id: batchId, at, stage: this.step, outcome: result.delivered ? 'ok' : 'error', code: result.code,
        detail: JSON.stringify({ version, attempt: row.attempts + 1, status: result.status, host }),
      }).execute();
    });
  }

  /** The partner's most recent pushes (console: webhook status). */
  async recentForPartner(partnerId: string, limit = 10): Promise<AckPushRow[]> {
    return this.db.selectFrom('ack_pushes').innerJoin('batches', 'batches.id', 'ack_pushes.batch_id')
      .selectAll('ack_pushes').where('batches.partner_id', '=', partnerId)
      .orderBy('ack_pushes.last_attempt_at', 'desc').limit(limit).execute();
  }

  /** Forget the pushes of an ack version: an operator asked for it to be pushed again. */
  async reset(batchId: string, version: number): Promise<void> {
    await this.db.deleteFrom(this.table).where('batch_id', '=', batchId).where('version', '=', version).execute();
  }

  /** The last attempt failed and no more will be made. */
  async markFailed(batchId: string, version: number, host: string, code: string): Promise<void> {
    const at = nowIso();
    await this.h.writeTx(async (tx) => {
      await tx.insertInto(this.table).values({
        batch_id: batchId, version, host, attempts: 0, last_attempt_at: null, last_status: null, last_code: code, delivered_at: null, failed_at: null,
      }).onConflict((oc) => oc.doNothing()).execute();
      const res = await tx.updateTable(this.table).set({ failed_at: at })
        .where('batch_id', '=', batchId).where('version', '=', version)
        .where('delivered_at', 'is', null).where('failed_at', 'is', null).executeTakeFirst();
      if (Number(res.numUpdatedRows) !== 1) return;
      await tx.insertInto('batch_events').values({
        batch_id: batchId, at, stage: this.step, outcome: 'error', code: 'webhook.gave_up', detail: JSON.stringify({ version, lastCode: code, host }),
      }).execute();
    });
  }

  /**
   * Newest ack version of each of a partner's batches, newest first; with `pendingOnly`,
   * those neither downloaded nor pushed yet.
   */
  async partnerAcks(partnerId: string, opts: { pendingOnly?: boolean; limit?: number } = {}): Promise<PartnerAck[]> {
    let q = this.db.selectFrom('acks')
      .innerJoin('batches', 'batches.id', 'acks.batch_id')
      .leftJoin('ack_pushes', (j) => j.onRef('ack_pushes.batch_id', '=', 'acks.batch_id').onRef('ack_pushes.version', '=', 'acks.version'))
      .select([
        'acks.batch_id', 'acks.version', 'acks.sha256', 'acks.outbox_name', 'acks.created_at', 'acks.first_downloaded_at', 'acks.download_count',
        'batches.file_name', 'batches.lane', 'batches.channel', 'batches.outcome', 'ack_pushes.delivered_at as pushed_at',
      ])
      .where('batches.partner_id', '=', partnerId)
      .whereRef('acks.version', '=', 'batches.ack_version');
    if (opts.pendingOnly) q = q.where('acks.first_downloaded_at', 'is', null).where('ack_pushes.delivered_at', 'is', null);
    return q.orderBy('acks.created_at', 'desc').orderBy('acks.batch_id', 'desc').limit(opts.limit ?? 100).execute();
  }

  /**
   * Acks that should be pushed but are neither delivered nor given up (the reconciler's
   * work list for the deliver queue): newest version of batches of partners with a webhook.
   */
  async undelivered(limit = 500): Promise<{ batch_id: string; version: number }[]> {
    return this.db.selectFrom('acks')
      .innerJoin('batches', 'batches.id', 'acks.batch_id')
      .innerJoin('partners', 'partners.id', 'batches.partner_id')
      .leftJoin('ack_pushes', (j) => j.onRef('ack_pushes.batch_id', '=', 'acks.batch_id').onRef('ack_pushes.version', '=', 'acks.version'))
      .select(['acks.batch_id', 'acks.version'])
      .where('partners.webhook_url', 'is not', null)
      .where('partners.status', '=', 'active')
      .whereRef('acks.version', '=', 'batches.ack_version')
      .where('ack_pushes.delivered_at', 'is', null)
      .where('ack_pushes.failed_at', 'is', null)
      .orderBy('acks.created_at').limit(limit).execute();
  }
}
