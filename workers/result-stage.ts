/**
 * The result stage: once the account service reported the outcome of a handoff version,
 * sign the result document with the active gateway key, encrypt it to the partner's newest
 * usable key and publish it like an ack (partner-document.ts: one blob per version, made
 * once whatever crashes or redeliveries happen), link it into the SFTP outbox as
 * `<uploaded name>.result.pgp`, record it, then release the records — the batch's data key
 * is shredded and the accepted records, the payload and the service's messages are deleted —
 * and queue the webhook push. Keyed by batch id and version; the reconciler queues it again
 * for every confirmed version not yet released.
 */
import { promises as fsp } from 'node:fs';
import type { Batch, Handoff } from '../gateway/core/ledger/index.js';
import { nowIso } from '../gateway/core/ledger/index.js';
import { PgwError } from '../gateway/core/errors.js';
import { removeQuietly, fsyncDir } from '../gateway/core/fs-atomic.js';
import { hashFile } from '../gateway/core/file-hash.js';
import { resultFileName } from '../gateway/core/file-names.js';
import { acceptedRecords, readAcceptedMeta } from '../gateway/admin/accepted-records.js';
import { outcomeFiles, outcomeMessages } from '../gateway/admin/handoffs.js';
import { buildResultDocument } from './result-document.js';
import { linkIntoOutbox, removeUnpublished, sealForPartner } from './partner-document.js';
import type { StageContext } from './stage-context.js';

export async function runResultStage(ctx: StageContext, batchId: string, version: number): Promise<void> {
  const batch = await ctx.ledger.batches.get(batchId);
  const handoff = await ctx.ledger.handoffs.get(batchId);
  if (!batch || !handoff || handoff.version !== version || handoff.state !== 'confirmed') return; // superseded or not yet
  const log = ctx.log.child({ partner: batch.partner_id, batch: batch.id, stage: 'result' });
  if (!(await ctx.ledger.handoffs.getResult(batch.id, version))) await publishResult(ctx, batch, handoff, log);
  await release(ctx, batch, version, log);
  await announceDelivery(ctx, batch, version);
}

async function publishResult(ctx: StageContext, batch: Batch, handoff: Handoff, log: StageContext['log']): Promise<void> {
  const version = handoff.version;
  const blob = ctx.dataDir.resultBlob(batch.id, version);
  const previous = (await ctx.ledger.handoffs.results(batch.id)).filter((r) => r.version < version).pop();
  const exists = await fsp.stat(blob).then(() => true, () => false);
  // The inputs are read only when the document is still to be made (a retry reuses the blob).
  const inputs = exists ? null : {
    rows: await ctx.ledger.handoffs.outcomes(batch.id, version),
    references: await recordReferences(ctx, batch),
    messages: await outcomeMessages(ctx, batch, handoff),
  };
  const { signedBy, encryptedTo } = await sealForPartner(ctx, {
    partnerId: batch.partner_id,
    blob,
    literalName: 'result.json',
    build: () => buildResultDocument(batch, handoff, inputs!.rows, { ...inputs!, ...(previous ? { supersedes: previous.sha256 } : {}) }),
    noKey: async () => {
      await ctx.ledger.batches.addEvent(batch.id, 'result', 'error', 'ack.no_partner_key', { version });
      throw new PgwError('ack.no_partner_key', undefined, { partner: batch.partner_id });
    },
    beforePublish: 'before-result-publish',
  });
  const sha256 = await hashFile(blob);
  const outboxName = await chooseOutboxName(ctx, batch);
  // As for acks: an SFTP upload's result is in its outbox; every result is at GET /v1/batches/{id}/result.
  if (batch.channel === 'sftp') await linkIntoOutbox(ctx, batch.partner_id, batch.lane, blob, outboxName);
  const recorded = await ctx.ledger.handoffs.recordResult({
    batch_id: batch.id, version, sha256, outbox_name: outboxName, signed_by: signedBy, encrypted_to: encryptedTo, created_at: nowIso(),
  });
  if (recorded) log.info('result published', { version, resultSha256: sha256, outbox: outboxName });
  await removeUnpublished(ctx, blob);
}

/**
 * The partner's own reference of each accepted record (echoed in the result, as in acks),
 * read from the accepted-records file while it is still there.
 */
async function recordReferences(ctx: StageContext, batch: Batch): Promise<Map<number, string>> {
  const out = new Map<number, string>();
  const file = ctx.dataDir.acceptedFile(batch.id);
  if (!batch.data_key || !(await fsp.stat(file).then(() => true, () => false))) return out;
  const key = ctx.dataKeys.unwrap(batch.data_key);
  const { indexes } = await readAcceptedMeta(file, key);
  for await (const chunk of acceptedRecords(file, key, indexes)) {
    for (const { index, raw } of chunk) {
      const ref = (JSON.parse(raw.toString('utf8')) as { reference?: unknown }).reference;
      if (typeof ref === 'string') out.set(index, ref);
    }
  }
  return out;
}

/**
 * The records have been handed on and answered for: shred the data key (the ledger write,
 * which refuses while the batch is being reprocessed), then delete what it opened.
 */
async function release(ctx: StageContext, batch: Batch, version: number, log: StageContext['log']): Promise<void> {
  await ctx.ledger.handoffs.release(batch.id, version);
  const h = await ctx.ledger.handoffs.get(batch.id);
  if (!h || h.version !== version || !h.released_at) return; // reprocessing: its run owns the files
  const files = [ctx.dataDir.acceptedFile(batch.id), ctx.dataDir.payloadFile(batch.id), ...(await outcomeFiles(ctx.dataDir, batch.id))];
  let removed = 0;
  for (const f of files) {
    if (await fsp.stat(f).then(() => true, () => false)) removed++;
    await removeQuietly(f);
  }
  if (removed) {
    await fsyncDir(ctx.dataDir.acceptedDir).catch(() => {});
    await fsyncDir(ctx.dataDir.payloadDir).catch(() => {});
    log.info('handoff released', { version, filesDeleted: removed });
  }
}

async function announceDelivery(ctx: StageContext, batch: Batch, version: number): Promise<void> {
  if (!ctx.enqueuer.enqueueDelivery) return;
  const partner = await ctx.ledger.partners.get(batch.partner_id);
  if (!partner?.webhook_url) return;
  await ctx.enqueuer.enqueueDelivery(batch.id, version, 'result').catch((err: unknown) => {
    ctx.log.warn('could not queue the result push; the reconciler will', { partner: batch.partner_id, batch: batch.id, err });
  });
}

/** `<uploaded name>.result.pgp`, unless another batch's result holds that name (then with the batch id). */
async function chooseOutboxName(ctx: StageContext, batch: Batch): Promise<string> {
  const plain = resultFileName(batch.file_name);
  const holders = await ctx.ledger.handoffs.resultsByOutboxName(batch.partner_id, [plain]);
  return holders.some((r) => r.batch_id !== batch.id) ? resultFileName(batch.file_name, batch.id) : plain;
}
