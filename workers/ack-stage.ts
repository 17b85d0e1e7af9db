/**
 * Stage 3: sign the ack with the active gateway key, encrypt it to the partner's newest
 * usable key, and publish it.
 *
 * Exactly one ack per batch and version, whatever crashes or redeliveries happen: the
 * signed+encrypted bytes are published once to `acks/<batchId>.v<N>.pgp` with a hard link
 * that fails if the file exists; a retry reuses those bytes. The outbox entry is a link to
 * the same file, and the ledger row (insert-once) finishes the batch.
 */
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { openpgp } from '../keys/openpgp-lib.js';
import type { Batch } from '../gateway/core/ledger/index.js';
import { nowIso } from '../gateway/core/ledger/index.js';
import { PgwError } from '../gateway/core/errors.js';
import { publishOnce, removeQuietly, writeFileAtomic, linkAtomically, tempNameFor } from '../gateway/core/fs-atomic.js';
import { hashFile } from '../gateway/ingest/upload.js';
import { ackFileName } from '../gateway/ingest/file-names.js';
import { openpgpConfig } from '../keys/openpgp-policy.js';
import { ackEncryptionKey, loadPartnerKeys } from '../keys/partner-keys.js';
import { keyNotices } from '../keys/key-notices.js';
import { buildAckDocument } from './ack-document.js';
import type { StageContext } from './stage-context.js';

export async function runAckStage(ctx: StageContext, batchId: string): Promise<void> {
  const batch = await ctx.ledger.batches.get(batchId);
  if (!batch || batch.stage !== 'ack') return;
  const log = ctx.log.child({ partner: batch.partner_id, batch: batch.id, stage: 'ack' });
  const version = (batch.ack_version ?? 0) + 1;
  const previous = version > 1 ? await ctx.ledger.batches.getAck(batch.id, version - 1) : undefined;
  const blob = ctx.dataDir.ackBlob(batch.id, version);

  let signedBy: string;
  let encryptedTo: string;
  const existing = await fsp.stat(blob).catch(() => null);
  if (existing) {
    // A previous attempt published the ack: reuse it, never produce a second one.
    ({ signedBy, encryptedTo } = await readAckMeta(blob));
  } else {
    ({ signedBy, encryptedTo } = await produceAck(ctx, batch, version, previous?.sha256, blob));
  }
  ctx.fault('after-ack-written');

  const sha256 = await hashFile(blob);
  const outboxName = await chooseOutboxName(ctx, batch);
  // The channel of upload decides where the ack is written: SFTP uploads find it in their
  // outbox; every ack (of either channel) is served by GET /v1/batches/{id}/ack from the blob.
  if (batch.channel === 'sftp') await linkIntoOutbox(ctx, batch, blob, outboxName);

  const recorded = await ctx.ledger.batches.recordAck({
    batch_id: batch.id, version, sha256, outbox_name: outboxName, signed_by: signedBy, encrypted_to: encryptedTo, created_at: nowIso(),
  });
  if (recorded) log.info('ack published', { outcome: batch.outcome, version, ackSha256: sha256, outbox: outboxName, lane: batch.lane });
  await removeUnpublishedAcks(ctx, batch.id, version);
  await announceDelivery(ctx, batch, version);
}

/**
 * Temp files of other attempts at this ack (the ack, its meta note and its outbox link, all
 * made as `tmp/.tmp-<random>-<blob name>…`): a worker killed while making one (another
 * host, say) leaves it behind. The ack is published and recorded now, so none is needed; an
 * attempt still at work (its job lock lapsed) fails its link or rename and is retried as a
 * no-op. They live in tmp/ (in-flight files only), not beside the blobs, so this listing
 * stays small however many acks are kept.
 */
async function removeUnpublishedAcks(ctx: StageContext, batchId: string, version: number): Promise<void> {
  const mark = `-${path.basename(ctx.dataDir.ackBlob(batchId, version))}`;
  for (const n of await fsp.readdir(ctx.dataDir.tmpDir).catch(() => [] as string[])) {
    if (n.startsWith('.tmp-') && n.includes(mark)) await removeQuietly(path.join(ctx.dataDir.tmpDir, n));
  }
}

/** The temp link is made in tmp/ under the blob's name, so {@link removeUnpublishedAcks} clears one a crash left. */
async function linkIntoOutbox(ctx: StageContext, batch: Batch, blob: string, outboxName: string): Promise<void> {
  const target = path.join(ctx.dataDir.outboxFor(batch.partner_id, batch.lane), outboxName);
  await linkAtomically(blob, target, ctx.dataDir.tmpDir, () => ctx.fault('before-outbox-rename'));
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

async function produceAck(
  ctx: StageContext, batch: Batch, version: number, supersedes: string | undefined, blob: string,
): Promise<{ signedBy: string; encryptedTo: string }> {
  await ctx.keyring.refresh();
  const now = new Date();
  const signing = ctx.keyring.signingKey(now);
  const partnerKeys = await loadPartnerKeys(ctx.ledger, batch.partner_id);
  const recipient = await ackEncryptionKey(partnerKeys, now);
  if (!recipient) {
    await ctx.ledger.batches.addEvent(batch.id, 'ack', 'error', 'ack.no_partner_key');
    throw new PgwError('ack.no_partner_key', undefined, { partner: batch.partner_id });
  }
  const notices = keyNotices(batch, partnerKeys.map((k) => k.row), ctx.keyring.all().map((k) => k.row), now);
  const doc = buildAckDocument(batch, { ackVersion: version, notices, ...(supersedes ? { supersedes } : {}) });
  const encrypted = await openpgp.encrypt({
    message: await openpgp.createMessage({ text: `${JSON.stringify(doc, null, 2)}\n`, format: 'utf8', filename: 'ack.json' }),
    encryptionKeys: recipient.key,
    signingKeys: signing.privateKey,
    format: 'binary',
    config: openpgpConfig(ctx.config.limits),
  });
  const signedBy = signing.row.fingerprint;
  const encryptedTo = recipient.row.fingerprint;
  const tmp = tempNameFor(blob, ctx.dataDir.tmpDir);
  const fh = await fsp.open(tmp, 'wx', 0o600);
  try {
    await fh.writeFile(encrypted as Uint8Array);
    await fh.sync();
  } finally {
    await fh.close();
  }
  ctx.fault('before-ack-publish');
  const published = await publishOnce(tmp, blob);
  await removeQuietly(tmp);
  if (!published) return readAckMeta(blob); // another worker (lost lock) published first: theirs is the ack
  await writeFileAtomic(`${blob}.meta.json`, JSON.stringify({ signedBy, encryptedTo }), 0o600, ctx.dataDir.tmpDir);
  return { signedBy, encryptedTo };
}

/** Who signed / was encrypted to, for an ack a previous attempt published. */
async function readAckMeta(blob: string): Promise<{ signedBy: string; encryptedTo: string }> {
  // The worker that published the blob writes this note right after; one that lost the race
  // (another host, after a lost job lock) may get here first, so give the winner a moment.
  for (let i = 0; i < 20; i++) {
    const raw = await fsp.readFile(`${blob}.meta.json`, 'utf8').catch(() => null);
    if (raw) return JSON.parse(raw) as { signedBy: string; encryptedTo: string };
    await new Promise((r) => setTimeout(r, 100));
  }
  // Crashed between publishing the ack and its note: the recipient is readable without decrypting.
  const msg = await openpgp.readMessage({ binaryMessage: await fsp.readFile(blob) });
  return { signedBy: 'unknown', encryptedTo: msg.getEncryptionKeyIDs().map((k) => k.toHex()).join(',') };
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
