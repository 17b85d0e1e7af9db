/**
 * Stage 1: decrypt and verify.
 *
 * The plaintext streams from openpgp into a quarantine file sealed with the batch's data
 * key. Nothing is promoted, parsed or enqueued until the integrity check has passed AND
 * every signature has resolved and met our policy (keys/partner-keys.ts) — with
 * `allowUnauthenticatedStream`, openpgp emits plaintext before it knows either.
 */
import { createReadStream, promises as fsp } from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { openpgp } from '../keys/pgp/openpgp-lib.js';
import type { Batch } from '../gateway/core/ledger/index.js';
import { nowIso } from '../gateway/core/ledger/index.js';
import { PgwError } from '../gateway/core/errors.js';
import type { Logger } from '../gateway/core/logger.js';
import { SealedWriter } from '../gateway/core/sealed-blob.js';
import { commitRename, removeQuietly } from '../gateway/core/fs-atomic.js';
import { openpgpConfig } from '../keys/pgp/openpgp-policy.js';
import { loadPartnerKeys, findPartnerKeyByKeyId, judgeSignature, type PartnerKey } from '../keys/partner-keys.js';
import { keyIdOf, shortFingerprint } from '../keys/pgp/pgp-inspect.js';
import { judgeMessageSignatures, MessageSignatureCount, type VerificationResult } from '../keys/pgp/signature-count.js';
import type { LoadedGatewayKey } from '../keys/gateway-keyring.js';
import { mapOpenpgpError } from '../keys/pgp/pgp-errors.js';
import { rejectBatch, type StageContext } from './stage-context.js';
import { MessageWatch, watchArmor, watchBinary } from '../keys/pgp/message-watch.js';
import { fastPathTakes, Seipd1Stream } from '../keys/pgp/seipd-v1.js';

export interface DecryptVerdict {
  signerFingerprint: string;
  signedAt: Date;
  decryptKeyFingerprint: string;
  plaintextBytes: number;
}

/**
 * Verdicts that mean the upload may not have been encrypted at all (plain JSON by mistake, a
 * cleartext-signed file, broken armor): its bytes could be personal data in the clear, so
 * the spooled copy is sealed with the batch's data key instead of kept as received.
 */
const MAYBE_PLAINTEXT = new Set(['pgp.malformed', 'pgp.not_encrypted', 'pgp.cleartext_signed']);

async function sealSpool(ctx: StageContext, batchId: string, key: Buffer): Promise<void> {
  const spool = ctx.dataDir.spoolFile(batchId);
  const sealed = ctx.dataDir.spoolSealedFile(batchId);
  const exists = await fsp.stat(spool).then(() => true, () => false);
  if (!exists) return; // sealed by an earlier attempt
  const tmp = `${sealed}.tmp`;
  const w = await SealedWriter.create(tmp, key);
  try {
    for await (const chunk of createReadStream(spool, { highWaterMark: 1024 * 1024 })) await w.write(chunk as Buffer);
    await w.finish();
  } catch (err) {
    await w.abort();
    await removeQuietly(tmp);
    throw err;
  }
  await commitRename(tmp, sealed);
  await fsp.unlink(spool);
}

export interface DecryptStageOptions {
  /** See {@link MessageWatch.guard}; tests shorten it. */
  stallMs?: number;
}

export async function runDecryptStage(ctx: StageContext, batchId: string, opts: DecryptStageOptions = {}): Promise<void> {
  const batch = await ctx.ledger.batches.get(batchId);
  if (!batch) {
    ctx.log.warn('decrypt: no such batch', { batch: batchId });
    return;
  }
  if (batch.stage !== 'decrypt') {
    // Already past this stage (a redelivered job): make sure the next stage is queued.
    if (batch.stage === 'validate' || batch.stage === 'ack') await ctx.enqueuer.enqueue(batch.stage, batch.id);
    return;
  }
  const log = ctx.log.child({ partner: batch.partner_id, batch: batch.id, stage: 'decrypt' });
  if (!batch.data_key) throw new PgwError('internal.processing_failed', 'data key missing');
  const key = ctx.dataKeys.unwrap(batch.data_key);
  const quarantine = ctx.dataDir.quarantineFile(batch.id, randomBytes(6).toString('hex'));
  await decryptRun(ctx, batch, key, quarantine, log, opts);
  // A normal return means the batch has left the decrypt stage (this run's verdict or
  // another's); a retryable failure throws and leaves the files to the retry.
  await removeEarlierRuns(ctx, batch.id);
}

/**
 * Quarantine files of other runs of this batch: a worker killed mid-decrypt (another host,
 * say) leaves its partial file, and the retry writes under a new run name. Once the batch
 * has left the decrypt stage no run needs one — a run that lost its job lock checks the
 * stage before promoting and drops its file, or fails its rename and is retried as a no-op.
 */
async function removeEarlierRuns(ctx: StageContext, batchId: string): Promise<void> {
  const names = await fsp.readdir(ctx.dataDir.quarantineDir).catch(() => [] as string[]);
  for (const n of names) if (ctx.dataDir.quarantineBatchId(n) === batchId) await removeQuietly(path.join(ctx.dataDir.quarantineDir, n));
}

async function decryptRun(
  ctx: StageContext, batch: Batch, key: Buffer, quarantine: string, log: Logger, opts: DecryptStageOptions,
): Promise<void> {
  const watch = new MessageWatch(opts.stallMs ?? ctx.config.workers.decryptStallMs);

  let verdict: DecryptVerdict;
  try {
    verdict = await decryptToQuarantine(ctx, batch, key, quarantine, watch);
  } catch (err) {
    // A failed MDC comes before whatever openpgp made of the garbage it decrypted to.
    if (watch.inner && !watch.violation) await watch.guard(watch.inner.settle()).catch(() => {});
    watch.closeInput();
    await removeQuietly(quarantine);
    // A framing violation may reach us as whatever error openpgp made of our stream error.
    const mapped = watch.violation ? watch.error() : watch.inner?.failure ?? mapOpenpgpError(err);
    if (mapped instanceof PgwError && !mapped.retryable) {
      if (MAYBE_PLAINTEXT.has(mapped.code)) await sealSpool(ctx, batch.id, key);
      await rejectBatch(ctx, batch, 'decrypt', mapped);
      return;
    }
    throw mapped;
  }

  // Verdict resolved: promote, then record. A crash between the two only repeats this stage.
  // A run whose job lock lapsed may find another worker already finished the batch: its own
  // (complete) quarantine file is then simply dropped.
  if ((await ctx.ledger.batches.get(batch.id))?.stage !== 'decrypt') {
    await removeQuietly(quarantine);
    return;
  }
  ctx.fault('before-promote');
  await commitRename(quarantine, ctx.dataDir.payloadFile(batch.id));
  ctx.fault('after-decrypt');
  await ctx.ledger.batches.advance(batch.id, 'decrypt', 'validate', {
    signer_fingerprint: verdict.signerFingerprint,
    signed_at: nowIso(verdict.signedAt),
    decrypt_key_fingerprint: verdict.decryptKeyFingerprint,
  }, {
    stage: 'decrypt', outcome: 'ok',
    detail: { signer: verdict.signerFingerprint, signedAt: nowIso(verdict.signedAt), decryptKey: verdict.decryptKeyFingerprint },
  });
  log.info('batch verified and decrypted', { signer: verdict.signerFingerprint, bytes: verdict.plaintextBytes });
  await ctx.enqueuer.enqueue('validate', batch.id);
}

async function decryptToQuarantine(
  ctx: StageContext, batch: Batch, dataKey: Buffer, quarantine: string, watch: MessageWatch,
): Promise<DecryptVerdict> {
  const now = new Date();
  const config = openpgpConfig(ctx.config.limits);
  const spool = ctx.dataDir.spoolFile(batch.id);
  const message = await readSpooledMessage(spool, config, watch);

  // Which of our keys was this encrypted to? Names the key in a rejection.
  await ctx.keyring.refresh();
  const recipientIds = message.getEncryptionKeyIDs().map((k) => k.toHex());
  if (recipientIds.length === 0) throw new PgwError('pgp.not_encrypted');
  const usable = ctx.keyring.decryptionKeys(now);
  const matched = recipientIds.map((id) => usable.find((k) => k.fingerprints.some((f) => keyIdOf(f) === id.toLowerCase())))
    .find((k) => k !== undefined);
  if (!matched) throw noKeyError(ctx, recipientIds, now);

  const partnerKeys = await loadPartnerKeys(ctx.ledger, batch.partner_id);
  const decrypted = await decryptAndVerify(message, matched.privateKey, {
    // Only the uploading partner's keys: another partner's real key is an unknown signer here.
    verificationKeys: partnerKeys.map((k) => k.key),
    expectSigned: false,
    format: 'binary',
    // openpgp refuses any signature time after `date`; the tolerated skew is our policy's to
    // judge (judgeSignature, against `now`), so openpgp gets the edge of the skew window.
    date: new Date(now.getTime() + ctx.config.signature.futureSkewSeconds * 1000),
    config,
  }, watch);

  const writer = await SealedWriter.create(quarantine, dataKey);
  try {
    const reader = (decrypted.data as ReadableStream<Uint8Array>).getReader();
    const ratio = ctx.config.limits.decompressionRatio;
    const floor = 1024 * 1024;
    for (;;) {
      const { done, value } = await watch.guard(reader.read());
      if (done) break;
      await writer.write(value);
      if (writer.bytesIn > ctx.config.limits.decompressedBytes) throw new PgwError('limits.decompressed_size', undefined, { limit: ctx.config.limits.decompressedBytes });
      if (writer.bytesIn > floor && writer.bytesIn > batch.size * ratio) throw new PgwError('limits.decompression_ratio', undefined, { limit: ratio });
    }
    // The data ends after openpgp has read the packets inside; the outer message's end is ours
    // to read. Then the watch has seen all.
    await watch.guard(decrypted.finish());
    if (watch.violation) throw watch.error();
    if (!watch.ended) throw new PgwError('internal.processing_failed', 'the message was not read to its end');
    await writer.finish();
  } catch (err) {
    await writer.abort();
    throw err;
  }

  const signer = await judgeAllSignatures(decrypted, partnerKeys, now, ctx, watch);
  return {
    signerFingerprint: signer.key.row.fingerprint,
    signedAt: signer.signedAt,
    decryptKeyFingerprint: matched.row.fingerprint,
    plaintextBytes: writer.bytesIn,
  };
}

type VerifyOptions = Omit<Parameters<typeof openpgp.verify>[0], 'message'> & { format: 'binary'; date: Date; config: openpgp.PartialConfig };
interface Decrypted {
  data: ReadableStream<Uint8Array>;
  signatures: Awaited<ReturnType<typeof openpgp.verify>>['signatures'];
  /** Every signature packet of the decrypted message, once `data` and `finish` are done. */
  present: MessageSignatureCount;
  /** Read the outer message to its end once `data` is done. */
  finish: () => Promise<void>;
}

/**
 * Decrypt, then openpgp.verify the packets inside — counting every signature packet as
 * openpgp reads it (keys/pgp/signature-count.ts), since verify() returns only those it chose
 * to judge. A SEIPD v1 packet with an AES session key (GnuPG's default) is decrypted by
 * seipd-v1.ts (the same checks, with CFB more than twice as fast, and a zip/zlib packet
 * inflated natively); anything else — SEIPD v2, other ciphers, several candidate session
 * keys (RSA's constant-time mode) — by openpgp's Message.decrypt, which is what
 * openpgp.decrypt runs before the same verify().
 */
async function decryptAndVerify(
  message: openpgp.Message<ReadableStream<Uint8Array>>, decryptionKey: openpgp.PrivateKey, opts: VerifyOptions, watch: MessageWatch,
): Promise<Decrypted> {
  const inner = await watch.guard(decryptInner(message, decryptionKey, opts, watch));
  const present = new MessageSignatureCount(inner);
  const verified = await watch.guard(openpgp.verify({ message: inner, ...opts }));
  const rest = (message.packets as unknown as { stream?: ReadableStream<unknown> | null }).stream;
  return {
    data: verified.data as ReadableStream<Uint8Array>,
    signatures: verified.signatures,
    present,
    finish: async () => {
      if (!rest) return;
      const r = rest.getReader();
      while (!(await r.read()).done);
    },
  };
}

/** The decrypted message (its packets still streaming). */
async function decryptInner(
  message: openpgp.Message<ReadableStream<Uint8Array>>, decryptionKey: openpgp.PrivateKey, opts: VerifyOptions, watch: MessageWatch,
): Promise<openpgp.Message<ReadableStream<Uint8Array>>> {
  // Message.decrypt takes a full configuration (openpgp.decrypt merges the defaults in first).
  const config = { ...openpgp.config, ...opts.config } as openpgp.Config;
  const viaOpenpgp = async (keys: { decryptionKeys?: openpgp.PrivateKey[]; sessionKeys?: openpgp.SessionKey[] }) => {
    const inner = await message.decrypt(keys.decryptionKeys, undefined, keys.sessionKeys, opts.date, config) as openpgp.Message<ReadableStream<Uint8Array>>;
    // As a message read from a stream: verify() then reads its packet streams to the end and
    // passes their errors (a failed integrity check, a grammar error) into the data.
    (inner as unknown as { fromStream: unknown }).fromStream = (message as unknown as { fromStream: unknown }).fromStream;
    return inner;
  };
  const seipd = message.packets.findPacket(openpgp.enums.packet.symEncryptedIntegrityProtectedData) as
    (openpgp.SymEncryptedIntegrityProtectedDataPacket & { version: number; encrypted: ReadableStream<Uint8Array> | null }) | undefined;
  if (!seipd || seipd.version !== 1) return viaOpenpgp({ decryptionKeys: [decryptionKey] });
  const sessionKeys = await watch.guard(openpgp.decryptSessionKeys({ message, decryptionKeys: decryptionKey, date: opts.date, config: opts.config }));
  const only = sessionKeys.length === 1 ? sessionKeys[0]! : null;
  if (!only || !fastPathTakes(only) || !seipd.encrypted) return viaOpenpgp({ sessionKeys: sessionKeys as openpgp.SessionKey[] });
  const inner = new Seipd1Stream(seipd.encrypted, only, opts.config.maxDecompressedMessageSize ?? Infinity);
  seipd.encrypted = null;
  watch.inner = inner;
  return await watch.guard(openpgp.readMessage({ binaryMessage: inner.plaintext, config: opts.config }));
}

async function readSpooledMessage(
  spool: string, config: openpgp.PartialConfig, watch: MessageWatch,
): Promise<openpgp.Message<ReadableStream<Uint8Array>>> {
  const fh = await fsp.open(spool, 'r');
  const head = Buffer.alloc(64);
  const { bytesRead } = await fh.read(head, 0, 64, 0);
  await fh.close();
  const start = head.subarray(0, bytesRead).toString('latin1').trimStart();
  if (start.startsWith('-----BEGIN PGP SIGNED MESSAGE')) throw new PgwError('pgp.cleartext_signed');
  try {
    if (start.startsWith('-----BEGIN PGP MESSAGE')) {
      // What readMessage({ armoredMessage }) does, with our watch on the text and on the binary.
      // Decode with a TextDecoderStream: Readable.toWeb() of a Node stream with `encoding` set
      // throws an uncaught RangeError (string chunks have no byteLength) as soon as the
      // consumer is slower than the disk — it took the worker down on any armored file > 256 KiB.
      const bytes = Readable.toWeb(watch.openInput(spool)) as unknown as ReadableStream<Uint8Array>;
      const text = bytes.pipeThrough(new TextDecoderStream() as unknown as TransformStream<Uint8Array, string>);
      const { type, data } = (await watch.guard(openpgp.unarmor(watchArmor(text, watch) as unknown as string))) as unknown as
        { type: openpgp.enums.armor; data: ReadableStream<Uint8Array> };
      if (type !== openpgp.enums.armor.message) throw new PgwError('pgp.malformed', 'the armored file is not a PGP MESSAGE');
      return await watch.guard(openpgp.readMessage({ binaryMessage: watchBinary(data, watch), config }));
    }
    if (start.startsWith('-----BEGIN')) throw new PgwError('pgp.malformed', 'the armored file is not a PGP MESSAGE');
    const bin = Readable.toWeb(watch.openInput(spool)) as unknown as ReadableStream<Uint8Array>;
    return await watch.guard(openpgp.readMessage({ binaryMessage: watchBinary(bin, watch), config }));
  } catch (err) {
    throw mapOpenpgpError(err);
  }
}

const BATCH_CODES = { missing: 'signature.missing', invalid: 'signature.invalid' } as const;

/**
 * Every signature packet present must be a document signature that verifies and meets the
 * policy (keys/pgp/signature-count.ts); a half-valid batch is rejected.
 */
async function judgeAllSignatures(
  decrypted: Decrypted, partnerKeys: PartnerKey[], now: Date, ctx: StageContext, watch: MessageWatch,
): Promise<{ key: PartnerKey; signedAt: Date }> {
  const judged = await judgeMessageSignatures(decrypted.present, decrypted.signatures, {
    purpose: 'document',
    codes: BATCH_CODES,
    settle: (p) => watch.guard(p),
    unreadable: (err) => mapOpenpgpError(err, 'signature.invalid'),
    verify: (packet, result) => judgeOne(result, packet, partnerKeys, now, ctx, watch),
  });
  return judged[0]!;
}

async function judgeOne(
  s: VerificationResult, packet: openpgp.SignaturePacket, partnerKeys: PartnerKey[], now: Date, ctx: StageContext, watch: MessageWatch,
): Promise<{ key: PartnerKey; signedAt: Date }> {
  const keyId = s.keyID.toHex();
  const pk = findPartnerKeyByKeyId(partnerKeys, keyId);
  if (!pk) {
    throw new PgwError('signature.unknown_key',
      `signed by key 0x${keyId.toUpperCase()}, which is not registered for this partner; register it or sign with a registered key`,
      { keyId });
  }
  try {
    await watch.guard(s.verified);
  } catch (err) {
    const mapped = mapOpenpgpError(err, 'signature.invalid');
    if (mapped instanceof PgwError && mapped.code !== 'signature.invalid') {
      // openpgp judged the key at the signature time (expired / newer than signature): say
      // which key and the dates we know for it, so the partner's IT can act on it.
      const dates = [`created ${pk.row.key_created_at.slice(0, 10)}`, ...(pk.row.not_after ? [`valid until ${pk.row.not_after.slice(0, 10)}`] : [])];
      throw new PgwError(mapped.code, `${mapped.message} (key ${shortFingerprint(pk.row.fingerprint)}, ${dates.join(', ')})`,
        { fingerprint: pk.row.fingerprint, keyCreatedAt: pk.row.key_created_at, notAfter: pk.row.not_after });
    }
    throw mapped;
  }
  if (!packet.created) throw new PgwError('signature.invalid', 'the signature has no creation time');
  judgeSignature(pk, packet.created, now, ctx.config.signature);
  return { key: pk, signedAt: packet.created };
}

function noKeyError(ctx: StageContext, recipientIds: string[], now: Date): PgwError {
  // With no active key (every key retired) the verdict on these bytes is still decrypt.no_key;
  // letting signingKey()'s `gateway.not_initialised` escape would reject the batch with an operator code.
  let current: LoadedGatewayKey | null;
  try {
    current = ctx.keyring.signingKey(now);
  } catch {
    current = null;
  }
  const cur = current ? shortFingerprint(current.row.fingerprint) : null;
  const currentKey = current?.row.fingerprint ?? null;
  for (const id of recipientIds) {
    const ours = ctx.keyring.findByKeyId(id);
    if (ours) {
      const revoked = ours.row.revoked_at !== null && (!ours.row.not_after || ours.row.revoked_at < ours.row.not_after);
      const when = `${revoked ? 'revoked' : 'retired'} on ${((revoked ? ours.row.revoked_at : ours.row.not_after) ?? '').slice(0, 10)}`;
      return new PgwError('decrypt.no_key',
        `encrypted to gateway key ${shortFingerprint(ours.row.fingerprint)}, ${when}; ${cur ? `the current key is ${cur} at /keys/gateway.asc` : 'no gateway key is active'}`,
        { recipients: recipientIds, retiredKey: ours.row.fingerprint, currentKey });
    }
  }
  return new PgwError('decrypt.no_key',
    `encrypted to ${recipientIds.map((i) => `0x${i.toUpperCase()}`).join(', ')}, not a gateway key; ${cur ? `encrypt to ${cur} from /keys/gateway.asc` : 'no gateway key is active'}`,
    { recipients: recipientIds, currentKey });
}
