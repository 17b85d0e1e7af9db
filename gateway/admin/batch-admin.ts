/**
 * Operator actions on batches (CLI `pgw batches reprocess`, console buttons). Each is an
 * audit event. A reprocessed batch runs the pipeline again from the earliest stage whose
 * input is still stored; its new ack gets the next `ackVersion` and names the one it
 * supersedes (workers/ack-stage.ts).
 */
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import type { Ledger, Batch } from '../core/ledger/index.js';
import type { DataDir } from '../core/data-dir.js';
import type { Enqueuer, PipelineStage } from '../core/pipeline.js';
import { PgwError } from '../core/errors.js';
import { linkAtomically } from '../core/fs-atomic.js';
import { withdrawHandoffInTx } from '../core/ledger/handoffs.js';
import { holderInTx } from '../core/ledger/subject-holds.js';

const exists = (f: string) => fsp.stat(f).then(() => true, () => false);

async function restartStage(dataDir: DataDir, b: Batch): Promise<PipelineStage> {
  if (b.duplicate_of) return 'ack';
  if (await exists(dataDir.spoolFile(b.id))) return 'decrypt';
  // After a subject erasure the received file is gone on purpose: the run starts from the
  // payload as the erasure left it, never from a copy that still holds the person.
  if (await exists(dataDir.payloadFile(b.id))) return 'validate';
  throw new PgwError('batch.not_reprocessable', 'neither the received file nor the payload is stored (past retention, released after the handoff, or erased)', { batch: b.id });
}

/**
 * Returns the stage it restarts from and whether the job was queued now (else the reconciler
 * does). A batch whose data key was shredded (its records handed off and released, or its
 * payload past retention) runs again from its received file under a fresh data key, when
 * `freshDataKey` is given (it needs the master key). Records already handed off are
 * withdrawn in the same write; the batch's next finish hands them off as the next version.
 */
export async function reprocessBatch(
  ledger: Ledger, dataDir: DataDir, enqueuer: Enqueuer, batchId: string, actor: string, freshDataKey?: () => string,
): Promise<{ from: PipelineStage; queued: boolean }> {
  const b = await ledger.batches.get(batchId);
  if (!b) throw new PgwError('batch.not_found', undefined, { batch: batchId });
  if (b.stage !== 'done') throw new PgwError('batch.not_reprocessable', 'the batch is still being processed; wait for its ack', { batch: batchId });
  const from = await restartStage(dataDir, b);
  let dataKey: { data_key: string; payload_purged_at: null } | Record<string, never> = {};
  if (!b.data_key && from !== 'ack') {
    if (from !== 'decrypt' || !freshDataKey) throw new PgwError('batch.not_reprocessable', 'the batch\'s data key was shredded; it can run again only from its received file, with the key passphrase', { batch: batchId });
    // What this run stores is new: retention counts it as not purged.
    dataKey = { data_key: freshDataKey(), payload_purged_at: null };
  }
  const verdict = from === 'decrypt'
    ? { signer_fingerprint: null, signed_at: null, decrypt_key_fingerprint: null, ...dataKey }
    : {};
  const moved = await ledger.batches.advance(b.id, 'done', from, {
    ...(from === 'ack' ? {} : {
      outcome: null, error_code: null, error_detail: null, schema: null, reference: null, records_total: null,
      records_accepted: null, records_rejected: null, record_issues: null, processed_at: null, ...verdict,
    }),
  }, { stage: 'reprocess', outcome: 'info', detail: { from, actor, previousAckVersion: b.ack_version } }, async (tx) => {
    // A subject erasure or correction rewriting the batch: running now would bring back what
    // it is taking out (checked after the move, which on PostgreSQL waited for its hold).
    const request = await holderInTx(tx, b.id);
    if (request) {
      throw new PgwError('batch.subject_action_running', `subject request ${request} is erasing or correcting records in it; nothing was changed: reprocess it once that is done (if it was interrupted: run it again, or wait 15 minutes)`, { batch: batchId, request });
    }
    await withdrawHandoffInTx(tx, b.id);
  });
  if (!moved) throw new PgwError('batch.not_reprocessable', 'the batch changed meanwhile; look again', { batch: batchId });
  await ledger.audit.record(actor, 'batch.reprocessed', b.id, { from, previousAckVersion: b.ack_version });
  // The ledger row is the record: with Redis away now, the reconciler queues it later.
  const queued = await enqueuer.enqueue(from, b.id).then(() => true, () => false);
  return { from, queued };
}

/**
 * Offer the newest ack again: back into the SFTP outbox (if the partner deleted it) and
 * pushed to the webhook once more (a new series of attempts).
 */
export async function resendAck(ledger: Ledger, dataDir: DataDir, enqueuer: Enqueuer, batchId: string, actor: string): Promise<void> {
  const b = await ledger.batches.get(batchId);
  const ack = b ? await ledger.batches.getAck(batchId) : undefined;
  if (!b || !ack) throw new PgwError('batch.not_found', 'no ack to resend', { batch: batchId });
  if (b.channel === 'sftp') {
    const target = path.join(dataDir.outboxFor(b.partner_id, b.lane), ack.outbox_name);
    if (!(await exists(target))) await linkAtomically(dataDir.ackBlob(b.id, ack.version), target, dataDir.tmpDir);
  }
  const partner = await ledger.partners.get(b.partner_id);
  if (partner?.webhook_url) {
    await ledger.ackPushes.reset(b.id, ack.version);
    await enqueuer.enqueueDelivery?.(b.id, ack.version);
  }
  await ledger.batches.addEvent(b.id, 'ack-resent', 'info', null, { version: ack.version, actor });
  await ledger.audit.record(actor, 'ack.resent', b.id, { version: ack.version });
}
