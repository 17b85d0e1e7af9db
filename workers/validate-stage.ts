/**
 * Stage 2: parse and validate the promoted plaintext against schemas/, record per-record
 * issues (codes and positions only), seal the accepted records and announce them on the
 * `handoff` queue (live lane only; the message carries the batch id, never records).
 */
import { nowIso } from '../gateway/core/ledger/index.js';
import { PgwError } from '../gateway/core/errors.js';
import { readSealedAll, writeSealed } from '../gateway/core/sealed-blob.js';
import type { Outcome } from '../gateway/core/ledger/schema.js';
import { validateBatch } from '../schemas/index.js';
import { rejectBatch, type StageContext } from './stage-context.js';

export async function runValidateStage(ctx: StageContext, batchId: string): Promise<void> {
  const batch = await ctx.ledger.batches.get(batchId);
  if (!batch) return;
  if (batch.stage !== 'validate') {
    if (batch.stage === 'ack') await ctx.enqueuer.enqueue('ack', batch.id);
    return;
  }
  if (!batch.data_key) throw new PgwError('internal.processing_failed', 'data key missing');
  const log = ctx.log.child({ partner: batch.partner_id, batch: batch.id, stage: 'validate' });
  const key = ctx.dataKeys.unwrap(batch.data_key);
  const partner = await ctx.ledger.partners.require(batch.partner_id);
  const plaintext = await readSealedAll(ctx.dataDir.payloadFile(batch.id), key);

  let result;
  try {
    result = validateBatch(plaintext, {
      fileName: batch.file_name,
      // The receipt time, not the processing time: a retried or delayed job decides the same.
      now: new Date(batch.received_at),
      allowBsnPlaceholder: partner.allow_bsn_placeholder === 1,
      maxRecords: ctx.config.limits.records,
      maxJsonDepth: ctx.config.limits.jsonDepth,
    });
  } catch (err) {
    if (err instanceof PgwError && !err.retryable) {
      await rejectBatch(ctx, batch, 'validate', err);
      return;
    }
    throw err;
  } finally {
    plaintext.fill(0);
  }

  const outcome: Outcome = result.accepted === result.total ? 'accepted' : result.accepted === 0 ? 'rejected' : 'partially_accepted';
  if (result.accepted > 0 && batch.lane === 'live') {
    await writeSealed(ctx.dataDir.acceptedFile(batch.id), key, Buffer.from(JSON.stringify({
      batchId: batch.id, schema: result.schema, records: result.acceptedRecords, indexes: result.acceptedIndexes,
    })));
    // Before the ledger moves on: a crash here repeats the stage, and the job id dedupes.
    await ctx.handoff?.add('batch', { batchId: batch.id }, { jobId: `${batch.id}-handoff`, removeOnComplete: { age: 86_400 }, removeOnFail: false });
  }
  await ctx.ledger.batches.advance(batch.id, 'validate', 'ack', {
    outcome,
    error_code: outcome === 'rejected' ? 'records.none_accepted' : null,
    schema: result.schema,
    reference: result.reference,
    records_total: result.total,
    records_accepted: result.accepted,
    records_rejected: result.rejected,
    record_issues: JSON.stringify({ errors: result.errors, warnings: result.warnings }),
    processed_at: nowIso(),
  }, {
    stage: 'validate', outcome: outcome === 'rejected' ? 'error' : 'ok',
    code: outcome === 'rejected' ? 'records.none_accepted' : null,
    detail: { total: result.total, accepted: result.accepted, rejected: result.rejected, handedOff: batch.lane === 'live' && result.accepted > 0 },
  });
  log.info('batch validated', { outcome, total: result.total, accepted: result.accepted, rejected: result.rejected });
  await ctx.enqueuer.enqueue('ack', batch.id);
}
