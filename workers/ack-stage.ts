/**
 * Stage 3: sign the ack with the active gateway key, encrypt it to the partner's newest
 * usable key, and publish it (the machinery is partner-document.ts, shared with results).
 *
 * Exactly one ack per batch and version, whatever crashes or redeliveries happen: the
 * signed+encrypted bytes are published once to `acks/<batchId>.v<N>.pgp` with a hard link
 * that fails if the file exists; a retry reuses those bytes. The outbox entry is a link to
 * the same file, and the ledger row (insert-once) finishes the batch — and, for a live batch
 * with accepted records, makes them ready for the handoff in the same transaction.
 */
import type { Batch } from '../gateway/core/ledger/index.js';
import { nowIso } from '../gateway/core/ledger/index.js';
import { readyHandoffInTx } from '../gateway/core/ledger/handoffs.js';
import { PgwError } from '../gateway/core/errors.js';
import { hashFile } from '../gateway/core/file-hash.js';
import { ackFileName } from '../gateway/core/file-names.js';
import { keyNotices } from '../keys/key-notices.js';
import { buildAckDocument } from './ack-document.js';
import { linkIntoOutbox, removeUnpublished, sealForPartner } from './partner-document.js';
import type { StageContext } from './stage-context.js';

export async function runAckStage(ctx: StageContext, batchId: string): Promise<void> {
  const batch = await ctx.ledger.batches.get(batchId);
  if (!batch || batch.stage !== 'ack') return;
  const log = ctx.log.child({ partner: batch.partner_id, batch: batch.id, stage: 'ack' });
  const version = (batch.ack_version ?? 0) + 1;
  const previous = version > 1 ? await ctx.ledger.batches.getAck(batch.id, version - 1) : undefined;
  const blob = ctx.dataDir.ackBlob(batch.id, version);

  const { signedBy, encryptedTo } = await sealForPartner(ctx, {
    partnerId: batch.partner_id,
    blob,
    literalName: 'ack.json',
    build: (now, partnerKeys) => buildAckDocument(batch, {
      ackVersion: version,
      notices: keyNotices(batch, partnerKeys.map((k) => k.row), ctx.keyring.all().map((k) => k.row), now),
      ...(previous ? { supersedes: previous.sha256 } : {}),
    }),
    noKey: async () => {
      await ctx.ledger.batches.addEvent(batch.id, 'ack', 'error', 'ack.no_partner_key');
      throw new PgwError('ack.no_partner_key', undefined, { partner: batch.partner_id });
    },
    beforePublish: 'before-ack-publish',
  });
  ctx.fault('after-ack-written');

  const sha256 = await hashFile(blob);
  const outboxName = await chooseOutboxName(ctx, batch);
  // The channel of upload decides where the ack is written: SFTP uploads find it in their
  // outbox; every ack (of either channel) is served by GET /v1/batches/{id}/ack from the blob.
  if (batch.channel === 'sftp') await linkIntoOutbox(ctx, batch.partner_id, batch.lane, blob, outboxName, 'before-outbox-rename');

  const handOff = batch.lane === 'live' && (batch.records_accepted ?? 0) > 0;
  const recorded = await ctx.ledger.batches.recordAck({
    batch_id: batch.id, version, sha256, outbox_name: outboxName, signed_by: signedBy, encrypted_to: encryptedTo, created_at: nowIso(),
  }, handOff ? async (tx) => { await readyHandoffInTx(tx, batch.id, batch.records_accepted ?? 0); } : undefined);
  if (recorded) log.info('ack published', { outcome: batch.outcome, version, ackSha256: sha256, outbox: outboxName, lane: batch.lane, handoff: handOff ? 'ready' : 'none' });
  await removeUnpublished(ctx, blob);
  await announceDelivery(ctx, batch, version);
}

/**
 * Queue the webhook push when the partner has a webhook. Also on a redelivered job whose
 * ack was already recorded (the push job id is per version, so this adds nothing twice);
 * if Redis is unreachable now, the reconciler queues it from the ledger later.
 */
async function announceDelivery(ctx: StageContext, batch: Batch, version: number): Promise<void> {
  if (!ctx.enqueuer.enqueueDelivery) return;
  const partner = await ctx.ledger.partners.get(batch.partner_id);
  if (!partner?.webhook_url) return;
  await ctx.enqueuer.enqueueDelivery(batch.id, version).catch((err: unknown) => {
    ctx.log.warn('could not queue the webhook push; the reconciler will', { partner: batch.partner_id, batch: batch.id, err });
  });
}

/**
 * `<uploaded name>.ack.pgp`, unless another batch's ack already holds that name (a partner
 * that reuses file names): then `<uploaded name>.<batchId>.ack.pgp`, so no ack is overwritten.
 */
async function chooseOutboxName(ctx: StageContext, batch: Batch): Promise<string> {
  const plain = ackFileName(batch.file_name);
  const holders = await ctx.ledger.batches.acksByOutboxName(batch.partner_id, [plain]);
  const other = holders.some((a) => a.batch_id !== batch.id);
  return other ? ackFileName(batch.file_name, batch.id) : plain;
}
