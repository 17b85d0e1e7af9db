/**
 * Stage 1: decrypt and verify.
 *
 * The plaintext streams from openpgp into a quarantine file sealed with the batch's data
 * key. Nothing is promoted, parsed or enqueued until the integrity check has passed AND
 * every signature has resolved and met our policy (keys/partner-keys.ts) — with
 * `allowUnauthenticatedStream`, openpgp emits plaintext before it knows either.
 */
import { createReadStream, promises as fsp, type ReadStream } from 'node:fs';
import { Readable } from 'node:stream';
import * as openpgp from 'openpgp';
import type { Batch } from '../gateway/core/ledger/index.js';
import { nowIso } from '../gateway/core/ledger/index.js';
import { PgwError } from '../gateway/core/errors.js';
import { SealedWriter } from '../gateway/core/sealed-blob.js';
import { commitRename, removeQuietly } from '../gateway/core/fs-atomic.js';
import { openpgpConfig } from '../keys/openpgp-policy.js';
import { loadPartnerKeys, findPartnerKeyByKeyId, judgeSignature, type PartnerKey } from '../keys/partner-keys.js';
import { shortFingerprint } from '../keys/pgp-inspect.js';
import type { LoadedGatewayKey } from '../keys/gateway-keyring.js';
import { mapOpenpgpError } from './pgp-errors.js';
import { rejectBatch, type StageContext } from './stage-context.js';

const SIGNATURE_TYPES_ACCEPTED = new Set([openpgp.enums.signature.binary, openpgp.enums.signature.text]);

export interface DecryptVerdict {
  signerFingerprint: string;
  signedAt: Date;
  decryptKeyFingerprint: string;
  plaintextBytes: number;
}

/** How long openpgp may go without consuming input or producing output before we give up on it. */
const DEFAULT_STALL_MS = 30_000;

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
  const quarantine = ctx.dataDir.quarantineFile(batch.id);
  const watch = new MessageWatch(opts.stallMs ?? DEFAULT_STALL_MS);

  let verdict: DecryptVerdict;
  try {
    verdict = await decryptToQuarantine(ctx, batch, key, quarantine, watch);
  } catch (err) {
    watch.closeInput();
    await removeQuietly(quarantine);
    // A framing violation may reach us as whatever error openpgp made of our stream error.
    const mapped = watch.violation ? watch.error() : mapOpenpgpError(err);
    if (mapped instanceof PgwError && !mapped.retryable) {
      await rejectBatch(ctx, batch, 'decrypt', mapped);
      return;
    }
    throw mapped;
  }

  // Verdict resolved: promote, then record. A crash between the two only repeats this stage.
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
  const matched = recipientIds.map((id) => usable.find((k) => k.fingerprints.some((f) => f.endsWith(id))))
    .find((k) => k !== undefined);
  if (!matched) throw noKeyError(ctx, recipientIds, now);

  const partnerKeys = await loadPartnerKeys(ctx.ledger, batch.partner_id);
  const decrypted = await watch.guard(openpgp.decrypt({
    message,
    decryptionKeys: matched.privateKey,
    // Only the uploading partner's keys: another partner's real key is an unknown signer here.
    verificationKeys: partnerKeys.map((k) => k.key),
    expectSigned: false,
    format: 'binary',
    // openpgp refuses any signature time after `date`; the tolerated skew is our policy's to
    // judge (judgeSignature, against `now`), so openpgp gets the edge of the skew window.
    date: new Date(now.getTime() + ctx.config.signature.futureSkewSeconds * 1000),
    config,
  }));

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
    // openpgp reads its input to the end before the plaintext stream closes: the watch has seen all.
    if (watch.violation) throw watch.error();
    if (!watch.ended) throw new PgwError('internal.processing_failed', 'the message was not read to its end');
    await writer.finish();
  } catch (err) {
    await writer.abort();
    throw err;
  }

  const signer = await judgeAllSignatures(decrypted.signatures, partnerKeys, now, ctx, watch);
  return {
    signerFingerprint: signer.key.row.fingerprint,
    signedAt: signer.signedAt,
    decryptKeyFingerprint: matched.row.fingerprint,
    plaintextBytes: writer.bytesIn,
  };
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

/** Every signature must verify and meet the policy; a half-valid batch is rejected. */
async function judgeAllSignatures(
  signatures: Awaited<ReturnType<typeof openpgp.decrypt>>['signatures'], partnerKeys: PartnerKey[], now: Date, ctx: StageContext,
  watch: MessageWatch,
): Promise<{ key: PartnerKey; signedAt: Date }> {
  if (signatures.length === 0) throw new PgwError('signature.missing');
  let first: { key: PartnerKey; signedAt: Date } | null = null;
  for (const s of signatures) {
    const keyId = s.keyID.toHex();
    const pk = findPartnerKeyByKeyId(partnerKeys, keyId);
    if (!pk) {
      throw new PgwError('signature.unknown_key',
        `signed by key 0x${keyId.toUpperCase()}, which is not registered for this partner; register it or sign with a registered key`,
        { keyId });
    }
    let packet: openpgp.SignaturePacket;
    try {
      packet = (await watch.guard(s.signature)).packets[0] as openpgp.SignaturePacket;
      await watch.guard(s.verified);
    } catch (err) {
      const mapped = mapOpenpgpError(err, 'signature.invalid');
      if (mapped instanceof PgwError && mapped.code !== 'signature.invalid') {
        // openpgp judged the key at the signature time (expired / newer than signature): say which key.
        throw new PgwError(mapped.code, `${mapped.message} (key ${shortFingerprint(pk.row.fingerprint)})`, { fingerprint: pk.row.fingerprint });
      }
      throw mapped;
    }
    if (!SIGNATURE_TYPES_ACCEPTED.has(packet.signatureType as number)) throw new PgwError('signature.invalid', 'only document signatures are accepted');
    if (!packet.created) throw new PgwError('signature.invalid', 'the signature has no creation time');
    judgeSignature(pk, packet.created, now, ctx.config.signature);
    first ??= { key: pk, signedAt: packet.created };
  }
  return first!;
}

function noKeyError(ctx: StageContext, recipientIds: string[], now: Date): PgwError {
  // With no active key (every key retired) the verdict on these bytes is still decrypt.no_key;
  // letting signingKey()'s `not_initialised` escape would reject the batch with an operator code.
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
      const when = (ours.row.not_after ?? ours.row.revoked_at ?? '').slice(0, 10);
      return new PgwError('decrypt.no_key',
        `encrypted to gateway key ${shortFingerprint(ours.row.fingerprint)}, retired on ${when}; ${cur ? `the current key is ${cur} at /keys/gateway.asc` : 'no gateway key is active'}`,
        { recipients: recipientIds, retiredKey: ours.row.fingerprint, currentKey });
    }
  }
  return new PgwError('decrypt.no_key',
    `encrypted to ${recipientIds.map((i) => `0x${i.toUpperCase()}`).join(', ')}, not a gateway key; ${cur ? `encrypt to ${cur} from /keys/gateway.asc` : 'no gateway key is active'}`,
    { recipients: recipientIds, currentKey });
}

// ---------------------------------------------------------------------------------------
// What we watch while openpgp reads the spool file.
//
// Strict framing (SECURITY.md: extra packets and appended junk are rejected). openpgp skips
// Marker, Trust and Padding packets wherever they appear (RFC 9580 says to ignore them) and
// ignores text after an armor's END line, so bytes appended to a valid message would pass
// unnoticed. And once its armor decoder meets a '=' or '-' in the data it buffers the rest of
// the file in memory, so a crafted armored upload could hold the whole file in RAM. The watch
// sees the bytes as openpgp reads them (no second pass) and errors the stream on a violation;
// anything else odd is left to openpgp and its codes.
//
// Progress. With `allowUnauthenticatedStream`, openpgp 6.3 deadlocks when the first packet
// inside the encrypted data is a streaming packet type it then refuses (e.g. an SE packet
// inside SEIPD — which any partner can send — or a first cipher block damaged in transit):
// PacketList.read delays the error and keeps writing that packet's body into a stream nobody
// reads, so decrypt() never settles and the job would hold a worker slot for ever. Every await
// on openpgp therefore goes through `guard()`, which gives up when openpgp has neither asked
// for input nor produced output for `stallMs` (time spent waiting for the disk, or with the
// event loop blocked by a long synchronous step, does not count).
// ---------------------------------------------------------------------------------------

const IGNORED_PACKET_TAGS = new Set([10, 12, 21]); // Marker, Trust, Padding
const ENCRYPTED_DATA_TAGS = new Set([9, 18, 20]); // SE, SEIPD, AEAD
/** Text allowed from the first '=' or '-' of the armored data to the end of the file. */
const MAX_ARMOR_TAIL = 64 * 1024;
const MAX_ARMOR_HEAD = 64 * 1024;
const ARMOR_LINE = /^-----[^-]+-----$/;
const EMPTY_LINE = /^[ \f\r\t\u00a0\u2000-\u200a\u202f\u205f\u3000]*$/;

class MessageWatch {
  violation: string | null = null;
  /** The binary input was read to its end. */
  ended = false;
  /** openpgp asked for input and we are waiting for the disk (or the armor decoder). */
  waitingForInput = false;
  private lastProgress = Date.now();
  private input: ReadStream | null = null;
  // top-level packet framing: session-key packets, then one encrypted data packet, then the end
  private header: number[] = [];
  private skip = 0;
  private continuation = false;
  private toEof = false;
  private afterData = false;
  private gaveUp = false;

  constructor(private readonly stallMs: number) {}

  error(): PgwError {
    return new PgwError('pgp.malformed', `${this.violation ?? 'malformed'}: send exactly one OpenPGP message per file`);
  }

  fail(why: string): void {
    this.violation ??= why;
  }

  openInput(spool: string): ReadStream {
    this.input = createReadStream(spool, { highWaterMark: 256 * 1024 });
    return this.input;
  }

  /** Release the spool file whatever state openpgp was left in. */
  closeInput(): void {
    this.input?.destroy();
  }

  progress(): void {
    this.lastProgress = Date.now();
  }

  /** Await an openpgp promise, unless openpgp stops making progress meanwhile. */
  async guard<T>(p: Promise<T>): Promise<T> {
    p.catch(() => {}); // if we give up, its late rejection is expected
    this.progress();
    const step = Math.max(10, Math.min(1000, Math.floor(this.stallMs / 4)));
    let tick = Date.now();
    let timer: NodeJS.Timeout | undefined;
    const stalled = new Promise<never>((_, reject) => {
      timer = setInterval(() => {
        const t = Date.now();
        if (t - tick > 2 * step || this.waitingForInput) this.progress();
        tick = t;
        if (t - this.lastProgress >= this.stallMs) {
          reject(new PgwError('pgp.malformed', 'the message could not be processed to its end (malformed or corrupted content)'));
        }
      }, step);
    });
    try {
      return await Promise.race([p, stalled]);
    } finally {
      clearInterval(timer);
    }
  }

  feed(chunk: Uint8Array): void {
    let i = 0;
    while (i < chunk.length && !this.violation && !this.gaveUp && !this.toEof) {
      if (this.skip > 0) {
        const n = Math.min(this.skip, chunk.length - i);
        this.skip -= n;
        i += n;
        continue;
      }
      this.header.push(chunk[i++]!);
      this.parseHeader();
    }
  }

  /** Parse `header` once complete: a packet header, or the length of a partial body's next part. */
  private parseHeader(): void {
    const h = this.header;
    let at = 0;
    let tag = -1;
    if (!this.continuation) {
      const b0 = h[0]!;
      if (!(b0 & 0x80)) {
        this.gaveUp = true; // not a packet: openpgp rejects it
        return;
      }
      if (!(b0 & 0x40)) { // old format: 1, 2, 4 length octets or "until the end"
        const n = [1, 2, 4, 0][b0 & 3]!;
        if (h.length < 1 + n) return;
        this.packet((b0 >> 2) & 0x0f);
        if (n === 0) this.toEof = true;
        else this.skip = h.slice(1, 1 + n).reduce((a, b) => a * 256 + b, 0);
        this.header = [];
        return;
      }
      tag = b0 & 0x3f;
      at = 1;
    }
    const l = h[at];
    if (l === undefined) return;
    let len: number;
    let partial = false;
    if (l < 192) len = l;
    else if (l < 224) {
      if (h.length < at + 2) return;
      len = ((l - 192) << 8) + h[at + 1]! + 192;
    } else if (l === 255) {
      if (h.length < at + 5) return;
      len = h.slice(at + 1, at + 5).reduce((a, b) => a * 256 + b, 0);
    } else {
      len = 1 << (l & 0x1f);
      partial = true;
    }
    if (tag >= 0) this.packet(tag);
    this.continuation = partial;
    this.skip = len;
    this.header = [];
  }

  private packet(tag: number): void {
    if (IGNORED_PACKET_TAGS.has(tag)) this.fail(`the file holds an extra packet (tag ${tag})`);
    else if (this.afterData) this.fail('the file holds data after the encrypted message');
    else if (ENCRYPTED_DATA_TAGS.has(tag)) this.afterData = true;
  }
}

/** The binary message as openpgp pulls it (high-water mark 0: we read only when asked). */
function watchBinary(input: ReadableStream<Uint8Array>, watch: MessageWatch): ReadableStream<Uint8Array> {
  const reader = input.getReader();
  return new ReadableStream<Uint8Array>({
    async pull(c) {
      watch.waitingForInput = true;
      let r: ReadableStreamReadResult<Uint8Array>;
      try {
        r = await reader.read();
      } finally {
        watch.waitingForInput = false;
        watch.progress();
      }
      if (r.done) {
        watch.ended = true;
        c.close();
        return;
      }
      watch.feed(r.value);
      if (watch.violation) {
        c.error(watch.error());
        await reader.cancel().catch(() => {});
      } else {
        c.enqueue(r.value);
      }
    },
    cancel(reason) {
      return reader.cancel(reason);
    },
  }, { highWaterMark: 0 });
}

/**
 * Armored text: one block, nothing but white space after its END line, and a bounded tail
 * (openpgp's decoder buffers everything from the first '=' or '-' of the data on).
 */
function watchArmor(input: ReadableStream<string>, watch: MessageWatch): ReadableStream<string> {
  let phase: 'begin' | 'headers' | 'data' | 'tail' = 'begin';
  let carry = '';
  let headChars = 0;
  let tailChars = 0;
  let afterEnd = false;
  const onLine = (raw: string) => {
    const line = raw.replace(/\r/g, '').replace(/[ \t]+$/, '');
    if (phase === 'begin') {
      if (ARMOR_LINE.test(line)) phase = 'headers';
    } else if (phase === 'headers') {
      if (EMPTY_LINE.test(line)) phase = 'data';
    } else if (afterEnd) {
      if (!/^\s*$/.test(line)) watch.fail('the file holds text after the armor END line');
    } else if (ARMOR_LINE.test(line)) {
      afterEnd = true;
    }
  };
  const scan = (s: string) => {
    let i = 0;
    while (i < s.length && !watch.violation) {
      if (phase === 'data') {
        const eq = s.indexOf('=', i);
        const dash = s.indexOf('-', i);
        const k = eq < 0 ? dash : dash < 0 ? eq : Math.min(eq, dash);
        if (k < 0) return '';
        phase = 'tail';
        tailChars += s.length - k; // the tail starts at the trigger character
        i = k;
        continue;
      }
      const nl = s.indexOf('\n', i);
      if (nl < 0) return s.slice(i);
      onLine(s.slice(i, nl));
      i = nl + 1;
    }
    return '';
  };
  return input.pipeThrough(new TransformStream<string, string>({
    transform(chunk, c) {
      if (phase === 'tail') tailChars += chunk.length;
      else if (phase !== 'data') headChars += chunk.length;
      carry = scan(carry + chunk);
      if (headChars > MAX_ARMOR_HEAD && (phase === 'begin' || phase === 'headers')) watch.fail('the armor header is too long');
      if (tailChars > MAX_ARMOR_TAIL) watch.fail('the armored text does not end after its checksum');
      if (watch.violation) c.error(watch.error());
      else c.enqueue(chunk);
    },
    flush(c) {
      if (carry) onLine(carry);
      if (watch.violation) c.error(watch.error());
    },
  }));
}
