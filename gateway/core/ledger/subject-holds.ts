/**
 * A subject erasure or correction and a reprocess of the same batch exclude each other. The
 * action holds the batch (a row in `leases`, named after the batch, held by the request)
 * while it rewrites the batch's copies; a reprocess checks for the hold in the transaction
 * that moves the batch back into the pipeline, and an action takes the hold only while the
 * batch is done. Both first write the batch row, so on PostgreSQL the second one waits for
 * the first to commit and then sees what it did (SQLite's BEGIN IMMEDIATE serialises them
 * anyway): whichever comes second is refused, nothing is changed.
 *
 * A process killed mid-rewrite leaves the hold until it expires; the same request run again
 * takes it over at once and finishes the batch (each step of the rewrite is idempotent).
 */
import type { Kysely } from 'kysely';
import type { LedgerHandle } from './ledger.js';
import { nowIso } from './ledger.js';
import type { DB } from './schema.js';

/** Longer than any one batch's rewrite; how long an interrupted action locks reprocess out. */
export const SUBJECT_HOLD_MS = 15 * 60_000;

const holdName = (batchId: string) => `subject-action:${batchId}`;

export type HoldResult = { held: true } | { held: false; inPipeline: true } | { held: false; heldBy: string };

/** Hold `batchId` for request `holder` — only while the batch is done and no other request holds it. */
export async function holdForSubject(h: LedgerHandle, batchId: string, holder: string, now: Date = new Date()): Promise<HoldResult> {
  return h.writeTx(async (tx) => {
    // A write to the batch row first: on PostgreSQL it waits for a reprocess moving the batch.
    await tx.updateTable('batches').set((eb) => ({ stage: eb.ref('stage') })).where('id', '=', batchId).execute();
    const b = await tx.selectFrom('batches').select('stage').where('id', '=', batchId).executeTakeFirst();
    if (b?.stage !== 'done') return { held: false, inPipeline: true };
    const other = await holderInTx(tx, batchId, now);
    if (other && other !== holder) return { held: false, heldBy: other };
    const expires_at = nowIso(new Date(now.getTime() + SUBJECT_HOLD_MS));
    await tx.insertInto('leases').values({ name: holdName(batchId), holder, expires_at })
      .onConflict((oc) => oc.column('name').doUpdateSet({ holder, expires_at })).execute();
    return { held: true };
  });
}

export async function releaseSubjectHold(h: LedgerHandle, batchId: string, holder: string): Promise<void> {
  await h.db.deleteFrom('leases').where('name', '=', holdName(batchId)).where('holder', '=', holder).execute();
}

/** The request holding `batchId` (unexpired), read inside the caller's write transaction. */
export async function holderInTx(tx: Kysely<DB>, batchId: string, now: Date = new Date()): Promise<string | null> {
  const row = await tx.selectFrom('leases').selectAll().where('name', '=', holdName(batchId)).executeTakeFirst();
  return row && row.expires_at > nowIso(now) ? row.holder : null;
}
