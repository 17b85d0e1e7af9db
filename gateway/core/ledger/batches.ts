/**
 * Batch rows, their stage events and their acks. Stage changes are conditional updates
 * (`where stage = <expected>`), so two workers racing on one batch cannot both move it.
 */
import { sql, type Kysely, type Selectable } from 'kysely';
import type { DB, BatchesTable, BatchEventsTable, AcksTable, Stage, Outcome, Lane, Channel } from './schema.js';
import { nowIso, type LedgerHandle } from './ledger.js';

export type Batch = Selectable<BatchesTable>;
export type BatchEvent = Selectable<BatchEventsTable>;
export type AckRow = Selectable<AcksTable>;

export interface NewBatch {
  id: string;
  partnerId: string;
  channel: Channel;
  lane: Lane;
  fileName: string;
  sha256: string;
  size: number;
  receivedAt: Date;
  /** Wrapped data key for everything this batch will produce. */
  dataKey: string;
  /**
   * The same bytes under the same name again are a retry of that upload, not a new batch
   * (HTTPS PUT is idempotent); nothing is inserted and the first batch is returned.
   */
  sameNameIsRetry?: boolean;
}

export interface BatchFilter {
  partnerId?: string;
  outcome?: Outcome | 'pending';
  errorCode?: string;
  since?: Date;
  until?: Date;
  /** Keyset paging: only batches listed after this one (newest first). */
  after?: { receivedAt: string; id: string };
  /** Keyset paging backwards: only batches newer than this one (still returned newest first). */
  before?: { receivedAt: string; id: string };
  /**
   * Console search: batches whose file name or partner reference contains this text, or
   * whose id starts with it (case-insensitive). `%` and `_` match only themselves.
   */
  search?: string;
  limit?: number;
}

/** A LIKE pattern matching `text` literally (escape character `!`), lower-cased. */
const likeLiteral = (text: string) => text.toLowerCase().replace(/[!%_]/g, (c) => `!${c}`);

export class BatchRepo {
  constructor(private readonly h: LedgerHandle) {}

  private get db(): Kysely<DB> {
    return this.h.db;
  }

  /**
   * Record a received file. The first batch with these bytes (per partner and lane) claims
   * the digest; a later one is recorded as a duplicate that goes straight to the ack stage.
   */
  async insertReceived(b: NewBatch): Promise<{ batch: Batch; duplicateOf: string | null; retryOf: string | null }> {
    return this.h.writeTx(async (tx) => {
      const at = nowIso(b.receivedAt);
      await tx.insertInto('batch_digests')
        .values({ partner_id: b.partnerId, lane: b.lane, sha256: b.sha256, batch_id: b.id })
        .onConflict((oc) => oc.doNothing())
        .execute();
      const claim = await tx.selectFrom('batch_digests').select('batch_id')
        .where('partner_id', '=', b.partnerId).where('lane', '=', b.lane).where('sha256', '=', b.sha256)
        .executeTakeFirstOrThrow();
      const duplicateOf = claim.batch_id === b.id ? null : claim.batch_id;
      if (duplicateOf && b.sameNameIsRetry) {
        const first = await tx.selectFrom('batches').selectAll().where('id', '=', duplicateOf).executeTakeFirstOrThrow();
        if (first.file_name === b.fileName) return { batch: first, duplicateOf: null, retryOf: first.id };
      }
      const row: BatchesTable = {
        id: b.id, partner_id: b.partnerId, channel: b.channel, lane: b.lane, file_name: b.fileName,
        sha256: b.sha256, size: b.size, received_at: at, stage: duplicateOf ? 'ack' : 'decrypt',
        outcome: duplicateOf ? 'rejected' : null, error_code: duplicateOf ? 'batch.duplicate' : null,
        error_detail: duplicateOf ? JSON.stringify({ firstBatchId: duplicateOf }) : null,
        duplicate_of: duplicateOf, data_key: b.dataKey, signer_fingerprint: null, signed_at: null,
        decrypt_key_fingerprint: null, schema: null, reference: null, records_total: null,
        records_accepted: null, records_rejected: null, record_issues: null, processed_at: duplicateOf ? at : null,
        acked_at: null, ack_version: null, updated_at: at,
        received_purged_at: null, payload_purged_at: null, acks_purged_at: null, anonymised_at: null,
      };
      await tx.insertInto('batches').values(row).execute();
      await insertEvent(tx, b.id, 'received', 'ok', null, { channel: b.channel, lane: b.lane, size: b.size });
      if (duplicateOf) await insertEvent(tx, b.id, 'received', 'error', 'batch.duplicate', { firstBatchId: duplicateOf });
      return { batch: row as Batch, duplicateOf, retryOf: null };
    });
  }

  async get(id: string): Promise<Batch | undefined> {
    return this.db.selectFrom('batches').selectAll().where('id', '=', id).executeTakeFirst();
  }

  async list(f: BatchFilter = {}): Promise<Batch[]> {
    let q = this.db.selectFrom('batches').selectAll();
    if (f.partnerId) q = q.where('partner_id', '=', f.partnerId);
    if (f.outcome === 'pending') q = q.where('outcome', 'is', null);
    else if (f.outcome) q = q.where('outcome', '=', f.outcome);
    if (f.errorCode) q = q.where('error_code', '=', f.errorCode);
    if (f.since) q = q.where('received_at', '>=', nowIso(f.since));
    if (f.until) q = q.where('received_at', '<', nowIso(f.until));
    if (f.search) {
      const inner = `%${likeLiteral(f.search)}%`;
      const prefix = `${likeLiteral(f.search)}%`;
      q = q.where(sql<boolean>`(lower(file_name) like ${inner} escape '!' or lower(coalesce(reference, '')) like ${inner} escape '!' or lower(id) like ${prefix} escape '!')`);
    }
    if (f.after) {
      const { receivedAt, id } = f.after;
      q = q.where((eb) => eb.or([eb('received_at', '<', receivedAt), eb.and([eb('received_at', '=', receivedAt), eb('id', '<', id)])]));
    }
    if (f.before) {
      const { receivedAt, id } = f.before;
      q = q.where((eb) => eb.or([eb('received_at', '>', receivedAt), eb.and([eb('received_at', '=', receivedAt), eb('id', '>', id)])]));
      const rows = await q.orderBy('received_at', 'asc').orderBy('id', 'asc').limit(f.limit ?? 100).execute();
      return rows.reverse();
    }
    return q.orderBy('received_at', 'desc').orderBy('id', 'desc').limit(f.limit ?? 100).execute();
  }

  /** Batches whose pipeline is not finished (the reconciler's work list). */
  async unfinished(limit = 1000): Promise<Pick<Batch, 'id' | 'stage' | 'updated_at'>[]> {
    return this.db.selectFrom('batches').select(['id', 'stage', 'updated_at'])
      .where('stage', '!=', 'done').orderBy('received_at').limit(limit).execute();
  }

  /** The most recent batch a partner uploaded under this name (for SFTP STAT after upload). */
  async latestByFileName(partnerId: string, lane: Lane, fileName: string): Promise<Batch | undefined> {
    return this.db.selectFrom('batches').selectAll()
      .where('partner_id', '=', partnerId).where('lane', '=', lane).where('file_name', '=', fileName)
      .orderBy('received_at', 'desc').limit(1).executeTakeFirst();
  }

  /**
   * Move a batch from `from` to `to` with the given column changes and one event, only if it
   * is still at `from`. Returns false when another worker got there first.
   */
  async advance(
    id: string,
    from: Stage,
    to: Stage,
    patch: Partial<Omit<BatchesTable, 'id' | 'stage'>>,
    event: { stage: string; outcome: 'ok' | 'error' | 'info'; code?: string | null; detail?: Record<string, unknown> },
    /** More writes that must happen with the move or not at all (e.g. withdrawing a handoff). */
    also?: (tx: Kysely<DB>) => Promise<void>,
  ): Promise<boolean> {
    return this.h.writeTx(async (tx) => {
      const res = await tx.updateTable('batches')
        .set({ ...patch, stage: to, updated_at: nowIso() })
        .where('id', '=', id).where('stage', '=', from)
        .executeTakeFirst();
      if (Number(res.numUpdatedRows) !== 1) return false;
      await insertEvent(tx, id, event.stage, event.outcome, event.code ?? null, event.detail ?? null);
      await also?.(tx);
      return true;
    });
  }

  async addEvent(id: string, stage: string, outcome: 'ok' | 'error' | 'info', code: string | null, detail?: Record<string, unknown>): Promise<void> {
    await insertEvent(this.db, id, stage, outcome, code, detail ?? null);
  }

  async events(id: string): Promise<BatchEvent[]> {
    return this.db.selectFrom('batch_events').selectAll().where('batch_id', '=', id).orderBy('id').execute();
  }

  async getAck(batchId: string, version?: number): Promise<AckRow | undefined> {
    let q = this.db.selectFrom('acks').selectAll().where('batch_id', '=', batchId);
    q = version === undefined ? q.orderBy('version', 'desc') : q.where('version', '=', version);
    return q.limit(1).executeTakeFirst();
  }

  /** Every ack version of a batch, oldest first. */
  async acks(batchId: string): Promise<AckRow[]> {
    return this.db.selectFrom('acks').selectAll().where('batch_id', '=', batchId).orderBy('version').execute();
  }

  /**
   * Record the ack and finish the batch in one transaction. Idempotent: a second call for
   * the same version changes nothing and returns false.
   */
  async recordAck(
    ack: Omit<AckRow, 'first_downloaded_at' | 'download_count'>,
    /** More writes that belong to finishing the batch (making its accepted records ready for the handoff). */
    also?: (tx: Kysely<DB>) => Promise<void>,
  ): Promise<boolean> {
    return this.h.writeTx(async (tx) => {
      const res = await tx.insertInto('acks').values({ ...ack, first_downloaded_at: null, download_count: 0 })
        .onConflict((oc) => oc.doNothing()).executeTakeFirst();
      const inserted = Number(res.numInsertedOrUpdatedRows ?? 0n) === 1;
      if (!inserted) return false;
      await tx.updateTable('batches')
        .set({ stage: 'done', acked_at: ack.created_at, ack_version: ack.version, updated_at: nowIso() })
        .where('id', '=', ack.batch_id).execute();
      await insertEvent(tx, ack.batch_id, 'ack', 'ok', null, { version: ack.version, sha256: ack.sha256, outbox: ack.outbox_name });
      await also?.(tx);
      return true;
    });
  }

  /** A delivery receipt: the partner fetched the ack. */
  async markAckDownloaded(batchId: string, version: number, channel: Channel): Promise<void> {
    const at = nowIso();
    await this.h.writeTx(async (tx) => {
      const row = await tx.selectFrom('acks').select(['first_downloaded_at', 'download_count'])
        .where('batch_id', '=', batchId).where('version', '=', version).executeTakeFirst();
      if (!row) return;
      await tx.updateTable('acks')
        .set({ first_downloaded_at: row.first_downloaded_at ?? at, download_count: row.download_count + 1 })
        .where('batch_id', '=', batchId).where('version', '=', version).execute();
      if (!row.first_downloaded_at) await insertEvent(tx, batchId, 'ack-downloaded', 'ok', null, { channel, version });
    });
  }

  /** Acks of a partner keyed by outbox name, for listing /outbox. */
  async acksByOutboxName(partnerId: string, names: string[]): Promise<AckRow[]> {
    if (names.length === 0) return [];
    return this.db.selectFrom('acks').innerJoin('batches', 'batches.id', 'acks.batch_id')
      .selectAll('acks').where('batches.partner_id', '=', partnerId).where('acks.outbox_name', 'in', names).execute();
  }
}

/** Append one event to a batch's timeline (inside the caller's transaction when `db` is one). */
export async function insertEvent(
  db: Kysely<DB>, batchId: string, stage: string, outcome: 'ok' | 'error' | 'info', code: string | null, detail: Record<string, unknown> | null,
): Promise<void> {
  await db.insertInto('batch_events').values({
    batch_id: batchId, at: nowIso(), stage, outcome, code, detail: detail ? JSON.stringify(detail) : null,
  }).execute();
}
