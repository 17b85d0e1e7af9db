/**
 * The handoff lifecycle of a batch's accepted records (see handoff-schema.ts for the words):
 * ready → taken → confirmed, a new version after a reprocess, the per-record outcomes, and
 * the result document made from them. Every change is a conditional update in a write
 * transaction with its timeline event, so two services (or two gateway processes) racing on
 * one batch cannot both move it.
 */
import { sql, type Kysely, type Selectable } from 'kysely';
import type { DB } from './schema.js';
import type { HandoffsTable, HandoffOutcomesTable, HandoffState, RecordOutcome, ResultsTable } from './handoff-schema.js';
import { nowIso, type LedgerHandle } from './ledger.js';
import { insertEvent } from './batches.js';

export type Handoff = Selectable<HandoffsTable>;
export type HandoffOutcomeRow = Selectable<HandoffOutcomesTable>;
export type ResultRow = Selectable<ResultsTable>;

/** A handoff with the batch facts the service and the console list it with. */
export type HandoffListRow = Handoff & { partner_id: string; file_name: string; schema: string | null; reference: string | null; received_at: string };

export interface HandoffFilter {
  /** `overdue`: ready or taken since before `overdueBefore`. */
  state?: HandoffState | 'overdue';
  overdueBefore?: Date;
  partnerId?: string;
  /** Cursor: only handoffs listed after this batch (oldest first). */
  after?: { readyAt: string; batchId: string };
  limit?: number;
}

export interface OutcomeInput {
  record: number;
  outcome: RecordOutcome;
  code: string | null;
}

export type ConfirmResult = 'confirmed' | 'same' | 'conflict' | 'not_found' | 'not_taken' | 'withdrawn' | 'superseded';

/** Rows per INSERT: well under both back ends' bound-parameter limits. */
const INSERT_CHUNK = 1000;

/**
 * Inside the transaction that finishes a batch (its ack recorded): make its accepted records
 * ready — version 1, or the next version when the batch was handed off before (a
 * reprocess). Returns the version.
 */
export async function readyHandoffInTx(tx: Kysely<DB>, batchId: string, records: number): Promise<number> {
  const at = nowIso();
  const prev = await tx.selectFrom('handoffs').select('version').where('batch_id', '=', batchId).executeTakeFirst();
  const version = (prev?.version ?? 0) + 1;
  const row: HandoffsTable = {
    batch_id: batchId, version, state: 'ready', records, ready_at: at, taken_at: null, taken_by: null, confirmed_at: null,
    confirmed_by: null, outcome_sha256: null, outcome_created: null, outcome_exists: null, outcome_failed: null,
    overdue_at: null, released_at: null, updated_at: at,
  };
  if (prev) await tx.updateTable('handoffs').set(row).where('batch_id', '=', batchId).execute();
  else await tx.insertInto('handoffs').values(row).execute();
  await insertEvent(tx, batchId, 'handoff-ready', 'info', null, { version, records });
  return version;
}

/**
 * Inside the transaction that starts a reprocess: the current version is withdrawn (not
 * listed, its outcome refused) until the batch is finished again. A confirmed version
 * stays confirmed: its outcome and result are history, the next version replaces them.
 */
export async function withdrawHandoffInTx(tx: Kysely<DB>, batchId: string): Promise<void> {
  const res = await tx.updateTable('handoffs').set({ state: 'withdrawn', updated_at: nowIso() })
    .where('batch_id', '=', batchId).where('state', 'in', ['ready', 'taken']).executeTakeFirst();
  if (Number(res.numUpdatedRows) === 1) await insertEvent(tx, batchId, 'handoff-withdrawn', 'info', null, { reason: 'reprocess' });
}

export class HandoffRepo {
  constructor(private readonly h: LedgerHandle) {}

  private get db(): Kysely<DB> {
    return this.h.db;
  }

  async get(batchId: string): Promise<Handoff | undefined> {
    return this.db.selectFrom('handoffs').selectAll().where('batch_id', '=', batchId).executeTakeFirst();
  }

  /** Oldest first (a work list); `withdrawn` ones only when asked for by state. */
  async list(f: HandoffFilter = {}): Promise<HandoffListRow[]> {
    let q = this.db.selectFrom('handoffs').innerJoin('batches', 'batches.id', 'handoffs.batch_id')
      .selectAll('handoffs')
      .select(['batches.partner_id', 'batches.file_name', 'batches.schema', 'batches.reference', 'batches.received_at'])
      .where('batches.lane', '=', 'live');
    if (f.state === 'overdue') {
      q = q.where('handoffs.state', 'in', ['ready', 'taken']).where('handoffs.ready_at', '<', nowIso(f.overdueBefore ?? new Date()));
    } else if (f.state) {
      q = q.where('handoffs.state', '=', f.state);
    } else {
      q = q.where('handoffs.state', 'in', ['ready', 'taken', 'confirmed']);
    }
    if (f.partnerId) q = q.where('batches.partner_id', '=', f.partnerId);
    if (f.after) {
      const { readyAt, batchId } = f.after;
      q = q.where((eb) => eb.or([eb('handoffs.ready_at', '>', readyAt), eb.and([eb('handoffs.ready_at', '=', readyAt), eb('handoffs.batch_id', '>', batchId)])]));
    }
    return q.orderBy('handoffs.ready_at').orderBy('handoffs.batch_id').limit(f.limit ?? 100).execute();
  }

  /**
   * The service fetched the records of `version`: ready → taken (the first fetch is the
   * one recorded). Returns false when that version is not ready or taken any more.
   */
  async markTaken(batchId: string, version: number, by: string): Promise<boolean> {
    return this.h.writeTx(async (tx) => {
      const at = nowIso();
      const res = await tx.updateTable('handoffs').set({ state: 'taken', taken_at: at, taken_by: by, updated_at: at })
        .where('batch_id', '=', batchId).where('version', '=', version).where('state', '=', 'ready').executeTakeFirst();
      if (Number(res.numUpdatedRows) === 1) {
        await insertEvent(tx, batchId, 'handoff-taken', 'info', null, { version, by });
        return true;
      }
      const row = await tx.selectFrom('handoffs').select(['state', 'version']).where('batch_id', '=', batchId).executeTakeFirst();
      return row?.version === version && row.state === 'taken';
    });
  }

  /**
   * Record the outcome of every record of a taken version, once. The same outcome again
   * (same hash) is `same`; a different one after confirmation is `conflict` and changes
   * nothing: the first stands.
   */
  async confirm(c: {
    batchId: string; version: number; by: string; sha256: string; outcomes: OutcomeInput[];
  }): Promise<ConfirmResult> {
    return this.h.writeTx(async (tx) => {
      const row = await tx.selectFrom('handoffs').selectAll().where('batch_id', '=', c.batchId).executeTakeFirst();
      if (!row) return 'not_found';
      if (row.state === 'confirmed') return row.version === c.version && row.outcome_sha256 === c.sha256 ? 'same' : 'conflict';
      if (row.version !== c.version) return 'superseded';
      if (row.state === 'withdrawn') return 'withdrawn';
      if (row.state !== 'taken') return 'not_taken';
      const counts = { created: 0, exists: 0, failed: 0 };
      for (const o of c.outcomes) counts[o.outcome]++;
      for (let i = 0; i < c.outcomes.length; i += INSERT_CHUNK) {
        await tx.insertInto('handoff_outcomes').values(c.outcomes.slice(i, i + INSERT_CHUNK).map((o) => ({
          batch_id: c.batchId, version: c.version, record: o.record, outcome: o.outcome, code: o.code,
        }))).execute();
      }
      const at = nowIso();
      await tx.updateTable('handoffs').set({
        state: 'confirmed', confirmed_at: at, confirmed_by: c.by, outcome_sha256: c.sha256,
        outcome_created: counts.created, outcome_exists: counts.exists, outcome_failed: counts.failed, updated_at: at,
      }).where('batch_id', '=', c.batchId).where('version', '=', c.version).where('state', '=', 'taken').execute();
      await insertEvent(tx, c.batchId, 'handoff-confirmed', 'ok', null, { version: c.version, by: c.by, ...counts });
      return 'confirmed';
    });
  }

  /** The outcomes of one version, by record index. */
  async outcomes(batchId: string, version: number): Promise<HandoffOutcomeRow[]> {
    return this.db.selectFrom('handoff_outcomes').selectAll()
      .where('batch_id', '=', batchId).where('version', '=', version).orderBy('record').execute();
  }

  /** Record the result document of a version (insert-once: false when it was already recorded). */
  async recordResult(r: Omit<ResultRow, 'first_downloaded_at' | 'download_count'>): Promise<boolean> {
    return this.h.writeTx(async (tx) => {
      const res = await tx.insertInto('results').values({ ...r, first_downloaded_at: null, download_count: 0 })
        .onConflict((oc) => oc.doNothing()).executeTakeFirst();
      if (Number(res.numInsertedOrUpdatedRows ?? 0n) !== 1) return false;
      await insertEvent(tx, r.batch_id, 'result', 'ok', null, { version: r.version, sha256: r.sha256, outbox: r.outbox_name });
      return true;
    });
  }

  /** The newest result of a batch, or the given version's. */
  async getResult(batchId: string, version?: number): Promise<ResultRow | undefined> {
    let q = this.db.selectFrom('results').selectAll().where('batch_id', '=', batchId);
    q = version === undefined ? q.orderBy('version', 'desc') : q.where('version', '=', version);
    return q.limit(1).executeTakeFirst();
  }

  async results(batchId: string): Promise<ResultRow[]> {
    return this.db.selectFrom('results').selectAll().where('batch_id', '=', batchId).orderBy('version').execute();
  }

  /** Results of a partner keyed by outbox name (SFTP download receipts). */
  async resultsByOutboxName(partnerId: string, names: string[]): Promise<ResultRow[]> {
    if (names.length === 0) return [];
    return this.db.selectFrom('results').innerJoin('batches', 'batches.id', 'results.batch_id')
      .selectAll('results').where('batches.partner_id', '=', partnerId).where('results.outbox_name', 'in', names).execute();
  }

  /** A delivery receipt: the partner fetched the result. */
  async markResultDownloaded(batchId: string, version: number, channel: 'sftp' | 'https'): Promise<void> {
    const at = nowIso();
    await this.h.writeTx(async (tx) => {
      const row = await tx.selectFrom('results').select(['first_downloaded_at', 'download_count'])
        .where('batch_id', '=', batchId).where('version', '=', version).executeTakeFirst();
      if (!row) return;
      await tx.updateTable('results')
        .set({ first_downloaded_at: row.first_downloaded_at ?? at, download_count: row.download_count + 1 })
        .where('batch_id', '=', batchId).where('version', '=', version).execute();
      if (!row.first_downloaded_at) await insertEvent(tx, batchId, 'result-downloaded', 'ok', null, { channel, version });
    });
  }

  /**
   * The result of `version` is made: the records are released — the batch's data key is
   * shredded (null) in the same write, so no sealed copy of them can be opened again (the
   * caller deletes the files after). Not while the batch is being reprocessed (its run
   * needs the key; the next version replaces this one): false then, and when done before.
   */
  async release(batchId: string, version: number): Promise<boolean> {
    return this.h.writeTx(async (tx) => {
      const at = nowIso();
      const batch = await tx.selectFrom('batches').select('stage').where('id', '=', batchId).executeTakeFirst();
      if (batch?.stage !== 'done') return false;
      const res = await tx.updateTable('handoffs').set({ released_at: at, updated_at: at })
        .where('batch_id', '=', batchId).where('version', '=', version).where('state', '=', 'confirmed').where('released_at', 'is', null)
        .executeTakeFirst();
      if (Number(res.numUpdatedRows) !== 1) return false;
      await tx.updateTable('batches').set({ data_key: null, updated_at: at }).where('id', '=', batchId).execute();
      await insertEvent(tx, batchId, 'handoff-released', 'info', null, { version, dataKey: 'shredded' });
      return true;
    });
  }

  /** Confirmed versions whose result is not made or whose records are not released yet (the reconciler's list). */
  async unreleased(limit = 500): Promise<{ batch_id: string; version: number }[]> {
    return this.db.selectFrom('handoffs').select(['batch_id', 'version'])
      .where('state', '=', 'confirmed').where('released_at', 'is', null).orderBy('confirmed_at').limit(limit).execute();
  }

  /** Newest results of partners with a webhook, neither pushed nor given up (the reconciler's list). */
  async undeliveredResults(limit = 500): Promise<{ batch_id: string; version: number }[]> {
    return this.db.selectFrom('results')
      .innerJoin('handoffs', 'handoffs.batch_id', 'results.batch_id')
      .innerJoin('batches', 'batches.id', 'results.batch_id')
      .innerJoin('partners', 'partners.id', 'batches.partner_id')
      .leftJoin('result_pushes', (j) => j.onRef('result_pushes.batch_id', '=', 'results.batch_id').onRef('result_pushes.version', '=', 'results.version'))
      .select(['results.batch_id', 'results.version'])
      .where('partners.webhook_url', 'is not', null)
      .where('partners.status', '=', 'active')
      .whereRef('results.version', '=', 'handoffs.version')
      .where('result_pushes.delivered_at', 'is', null)
      .where('result_pushes.failed_at', 'is', null)
      .orderBy('results.created_at').limit(limit).execute();
  }

  /** Newest results neither downloaded nor pushed, counted per partner (the console, /metrics). */
  async pendingResults(): Promise<{ partner_id: string; pending: number }[]> {
    const rows = await this.db.selectFrom('results')
      .innerJoin('handoffs', 'handoffs.batch_id', 'results.batch_id')
      .innerJoin('batches', 'batches.id', 'results.batch_id')
      .leftJoin('result_pushes', (j) => j.onRef('result_pushes.batch_id', '=', 'results.batch_id').onRef('result_pushes.version', '=', 'results.version'))
      .select(['batches.partner_id', sql<number>`count(*)`.as('n')])
      .whereRef('results.version', '=', 'handoffs.version')
      .where('results.first_downloaded_at', 'is', null)
      .where('result_pushes.delivered_at', 'is', null)
      .groupBy('batches.partner_id').orderBy('batches.partner_id').execute();
    return rows.map((r) => ({ partner_id: r.partner_id, pending: Number(r.n) }));
  }

  /**
   * Note every handoff that became overdue since the last call (ready or taken since before
   * `overdueBefore`), once per version, with a timeline event. Returns the batches noted now.
   */
  async noteOverdue(overdueBefore: Date): Promise<{ batch_id: string; version: number; state: HandoffState }[]> {
    const due = await this.db.selectFrom('handoffs').select(['batch_id', 'version', 'state'])
      .where('state', 'in', ['ready', 'taken']).where('overdue_at', 'is', null).where('ready_at', '<', nowIso(overdueBefore))
      .orderBy('ready_at').limit(10_000).execute();
    const noted: typeof due = [];
    for (const d of due) {
      const ok = await this.h.writeTx(async (tx) => {
        const at = nowIso();
        const res = await tx.updateTable('handoffs').set({ overdue_at: at, updated_at: at })
          .where('batch_id', '=', d.batch_id).where('version', '=', d.version).where('overdue_at', 'is', null).executeTakeFirst();
        if (Number(res.numUpdatedRows) !== 1) return false;
        await insertEvent(tx, d.batch_id, 'handoff-overdue', 'error', 'handoff.overdue', { version: d.version, state: d.state });
        return true;
      });
      if (ok) noted.push(d);
    }
    return noted;
  }

  /**
   * Retention's check before it may purge a batch's payload: an unconfirmed handoff (ready or
   * taken) is noted overdue now if it was not yet. Returns whether it was noted before this
   * call, and the handoff (undefined when the batch has none).
   */
  async noteOverdueFor(batchId: string, reason: string): Promise<{ handoff: Handoff | undefined; notedBefore: boolean }> {
    return this.h.writeTx(async (tx) => {
      const handoff = await tx.selectFrom('handoffs').selectAll().where('batch_id', '=', batchId).executeTakeFirst();
      if (!handoff || (handoff.state !== 'ready' && handoff.state !== 'taken')) return { handoff, notedBefore: false };
      if (handoff.overdue_at) return { handoff, notedBefore: true };
      const at = nowIso();
      await tx.updateTable('handoffs').set({ overdue_at: at, updated_at: at }).where('batch_id', '=', batchId).execute();
      await insertEvent(tx, batchId, 'handoff-overdue', 'error', 'handoff.overdue', { version: handoff.version, state: handoff.state, reason });
      return { handoff: { ...handoff, overdue_at: at }, notedBefore: false };
    });
  }

  /** Retention purged the records of an unconfirmed handoff: it is expired (no longer waiting, its records gone). */
  async expire(batchId: string): Promise<void> {
    await this.h.writeTx(async (tx) => {
      const at = nowIso();
      const res = await tx.updateTable('handoffs').set({ state: 'expired', released_at: at, updated_at: at })
        .where('batch_id', '=', batchId).where('state', 'in', ['ready', 'taken']).executeTakeFirst();
      if (Number(res.numUpdatedRows) === 1) await insertEvent(tx, batchId, 'handoff-expired', 'error', 'handoff.overdue', { reason: 'retention purged the unconfirmed records' });
    });
  }

  /** Waiting (ready or taken) and overdue handoffs per partner, for the console and /metrics. */
  async waiting(overdueBefore: Date): Promise<{ waiting: number; overdue: number; byPartner: { partner_id: string; state: string; waiting: number; overdue: number }[] }> {
    const cutoff = nowIso(overdueBefore);
    const rows = await this.db.selectFrom('handoffs').innerJoin('batches', 'batches.id', 'handoffs.batch_id')
      .select(['batches.partner_id', 'handoffs.state',
        sql<number>`count(*)`.as('n'),
        sql<number>`sum(case when handoffs.ready_at < ${cutoff} then 1 else 0 end)`.as('late')])
      .where('handoffs.state', 'in', ['ready', 'taken'])
      .groupBy(['batches.partner_id', 'handoffs.state'])
      .orderBy('batches.partner_id').execute();
    const byPartner = rows.map((r) => ({ partner_id: r.partner_id, state: r.state, waiting: Number(r.n), overdue: Number(r.late ?? 0) }));
    return {
      waiting: byPartner.reduce((n, r) => n + r.waiting, 0),
      overdue: byPartner.reduce((n, r) => n + r.overdue, 0),
      byPartner,
    };
  }
}
