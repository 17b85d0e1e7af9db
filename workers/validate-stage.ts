/**
 * Stage 2: parse and validate the promoted plaintext against schemas/, record per-record
 * issues (codes and positions only) and seal the accepted records (live lane only) for the
 * handoff; the ack stage makes them ready for the account service when it finishes the batch.
 */
import { promises as fsp } from 'node:fs';
import { nowIso } from '../gateway/core/ledger/index.js';
import { PgwError } from '../gateway/core/errors.js';
import { commitRename, removeQuietly, tempNameFor } from '../gateway/core/fs-atomic.js';
import type { Outcome } from '../gateway/core/ledger/schema.js';
import type { Batch } from '../gateway/core/ledger/index.js';
import { readSealed, readSealedAll, SealedWriter, writeSealed } from '../gateway/core/sealed-blob.js';
import type { SubjectIndexWriter } from '../gateway/core/ledger/subjects.js';
import { validateBatch, type ValidationContext } from '../schemas/index.js';
import { validateJsonStream, type AcceptedSink, type StreamedValidation } from '../schemas/batch-validator.js';
import { validateCsvStream } from '../schemas/csv-stream-validator.js';
import { rejectBatch, type StageContext } from './stage-context.js';
import { makeIssue } from '../schemas/record-issues.js';

export interface ValidateStageOptions {
  /**
   * Tests: sealed payloads up to this size are read whole and judged by `validateBatch`, the
   * in-memory reference (which does not apply the record size limit), to compare both paths.
   * Default: none, every batch streams.
   */
  streamAboveBytes?: number;
}

export async function runValidateStage(ctx: StageContext, batchId: string, opts: ValidateStageOptions = {}): Promise<void> {
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
  const payload = ctx.dataDir.payloadFile(batch.id);
  const vctx: ValidationContext = {
    fileName: batch.file_name,
    // The receipt time, not the processing time: a retried or delayed job decides the same.
    now: new Date(batch.received_at),
    allowBsnPlaceholder: partner.allow_bsn_placeholder === 1,
    maxRecords: ctx.config.limits.records,
    maxJsonDepth: ctx.config.limits.jsonDepth,
    maxRecordBytes: ctx.config.limits.recordBytes,
    // Subject requests (AVG): where each person's record is, under a keyed hash of the BSN.
    onSubject: (record, bsn) => subjects.add(record, bsn),
  };
  const subjects = ctx.ledger.subjects.writer(batch.id, (blocks) => ctx.dataKeys.subjectHashBlocks(blocks));

  let result: StreamedValidation;
  try {
    // Every batch, JSON or CSV, streams through in memory bounded by the record size limit
    // (PGW_MAX_RECORD_BYTES), not by the batch; it is also faster than one pass in memory.
    const size = (await fsp.stat(payload)).size;
    const whole = opts.streamAboveBytes !== undefined && size <= opts.streamAboveBytes;
    result = whole ? await validateWhole(ctx, batch, key, vctx) : await validateStreaming(ctx, batch, key, size, vctx, subjects);
  } catch (err) {
    if (err instanceof PgwError && !err.retryable) {
      await subjects.discard();
      await rejectBatch(ctx, batch, 'validate', err);
      return;
    }
    throw err;
  }

  await subjects.finish();
  result = asErased(result, await erasedRecords(ctx, batch.id));
  const outcome: Outcome = result.accepted === 0 ? 'rejected' : result.rejected === 0 ? 'accepted' : 'partially_accepted';
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
    // `handoff`: what becomes of the accepted records — queued for the account service once the ack is out (live lane), or none.
    detail: { total: result.total, accepted: result.accepted, rejected: result.rejected, handoff: batch.lane === 'live' && result.accepted > 0 ? 'queued' : 'none' },
  });
  log.info('batch validated', { outcome, total: result.total, accepted: result.accepted, rejected: result.rejected });
  await ctx.enqueuer.enqueue('ack', batch.id);
}

/** Record positions a subject erasure emptied in this batch (its `subject-erased` events; positions only). */
async function erasedRecords(ctx: StageContext, batchId: string): Promise<Set<number>> {
  const out = new Set<number>();
  for (const e of await ctx.ledger.batches.events(batchId)) {
    if (e.stage !== 'subject-erased' || !e.detail) continue;
    for (const i of (JSON.parse(e.detail) as { indexes?: number[] }).indexes ?? []) out.add(i);
  }
  return out;
}

/**
 * A reprocessed batch after an erasure: the erased records fail validation (they are null
 * now), but the partner did nothing wrong. They are not counted as rejected and are reported
 * as a warning `subject.erased` (position only), not as an error.
 */
function asErased(result: StreamedValidation, erased: ReadonlySet<number>): StreamedValidation {
  if (erased.size === 0) return result;
  const gone = new Set<number>();
  const errors = result.errors.filter((e) => {
    if (!erased.has(e.record)) return true;
    gone.add(e.record);
    return false;
  });
  if (gone.size === 0) return result;
  const warnings = [...result.warnings, ...[...gone].sort((a, b) => a - b).map((i) => makeIssue(i, undefined, '', 'subject.erased'))].sort((a, b) => a.record - b.record);
  return { ...result, errors, warnings, rejected: result.rejected - gone.size };
}

/**
 * How the plaintext is read, by its first byte after a byte-order mark and white space (as
 * `validateBatch` decides): `{` or `[` JSON (a top-level array names no schema: the scanner
 * says so at its first byte), anything else CSV; nothing but white space is an empty batch.
 */
async function payloadFormat(read: () => AsyncIterable<Uint8Array>): Promise<'json' | 'csv'> {
  let first = true;
  for await (const chunk of read()) {
    let i = first && chunk[0] === 0xef && chunk[1] === 0xbb && chunk[2] === 0xbf ? 3 : 0;
    first = false;
    while (chunk[i] === 0x20 || chunk[i] === 0x09 || chunk[i] === 0x0a || chunk[i] === 0x0d) i++;
    if (i < chunk.length) return chunk[i] === 0x7b || chunk[i] === 0x5b ? 'json' : 'csv';
  }
  throw new PgwError('batch.empty', undefined, {});
}

/** Sealed payloads up to this size are decrypted once, into memory (one sealed chunk is 1 MiB). */
const READ_ONCE_BYTES = 1024 * 1024;

/** The payload as a stream of plaintext chunks, validated by {@link validateRecords}. */
async function validateStreaming(ctx: StageContext, batch: Batch, key: Buffer, sealedSize: number, vctx: ValidationContext, subjects: SubjectIndexWriter): Promise<StreamedValidation> {
  const file = ctx.dataDir.payloadFile(batch.id);
  // A small payload (most batches) is decrypted once and read from memory: the format and a
  // second pass then cost no second decryption.
  const held = sealedSize <= READ_ONCE_BYTES ? await readSealedAll(file, key) : null;
  try {
    const read = held ? async function* (): AsyncGenerator<Buffer> { yield held; } : () => readSealed(file, key);
    return await validateRecords(ctx, batch, key, read, vctx, subjects);
  } finally {
    held?.fill(0);
  }
}

/**
 * Validates the plaintext `read` gives, by its format; the accepted records stream into the
 * sealed `accepted` file (same JSON document as the in-memory path writes: batchId, schema,
 * records, indexes), published only if any: a JSON batch's records as their exact bytes, a
 * CSV batch's as JSON objects.
 */
async function validateRecords(
  ctx: StageContext, batch: Batch, key: Buffer, read: () => AsyncIterable<Uint8Array>, vctx: ValidationContext, subjects: SubjectIndexWriter,
): Promise<StreamedValidation> {
  const format = await payloadFormat(read);
  const target = ctx.dataDir.acceptedFile(batch.id);
  const live = batch.lane === 'live';
  const tmp = tempNameFor(target);
  let writer = live ? await SealedWriter.create(tmp, key) : null;
  // Accepted indexes as one bit per record (a 4-million-record batch: 512 KiB; as 32-bit
  // numbers it was 16 MiB, 24 MiB while growing), written out in slices at the end.
  let indexes = new IndexBits();
  let count = 0;
  const comma = Buffer.from(',');
  try {
    const sink: AcceptedSink = async (accepted) => {
      await subjects.flush(); // full index parts go to the ledger as they fill, not all at the end
      if (!writer || accepted.length === 0) return;
      const parts: Buffer[] = [];
      for (const { raw, index } of accepted) {
        parts.push(count === 0 ? Buffer.from(`{"batchId":${JSON.stringify(batch.id)},"records":[`) : comma, raw);
        indexes.add(index);
        count += 1;
      }
      await writer.writeParts(parts);
    };
    const result = format === 'csv' ? await validateCsvStream(read, vctx, sink) : await validateJsonStream(read, vctx, sink, async () => {
      // The records are judged again from the start: drop what the first judgement left.
      await subjects.discard();
      indexes = new IndexBits();
      count = 0;
      if (writer) {
        await writer.abort();
        writer = await SealedWriter.create(tmp, key);
      }
    });
    if (writer && count > 0) {
      await writer.write(Buffer.from(`],"schema":${JSON.stringify(result.schema)},"indexes":[`));
      let first = true;
      for (const slice of indexes.slices(65_536)) {
        await writer.write(Buffer.from(`${first ? '' : ','}${slice.join(',')}`));
        first = false;
      }
      await writer.write(Buffer.from(']}'));
      await writer.finish();
      await commitRename(tmp, target);
    } else if (writer) {
      await writer.abort();
      await removeQuietly(tmp);
    }
    return result;
  } catch (err) {
    await writer?.abort();
    await removeQuietly(tmp);
    throw err;
  }
}

/** A growable set of record indexes, one bit each, read back in ascending order. */
export class IndexBits {
  private bits = new Uint8Array(1024);

  add(index: number): void {
    const byte = index >>> 3;
    if (byte >= this.bits.length) {
      const grown = new Uint8Array(Math.max(this.bits.length * 2, byte + 1));
      grown.set(this.bits);
      this.bits = grown;
    }
    this.bits[byte]! |= 1 << (index & 7);
  }

  /** The indexes in ascending order, at most `size` at a time. */
  *slices(size: number): Generator<number[]> {
    let out: number[] = [];
    for (let byte = 0; byte < this.bits.length; byte++) {
      const b = this.bits[byte]!;
      if (b === 0) continue;
      for (let bit = 0; bit < 8; bit++) {
        if (!(b & (1 << bit))) continue;
        out.push(byte * 8 + bit);
        if (out.length === size) {
          yield out;
          out = [];
        }
      }
    }
    if (out.length) yield out;
  }
}

/** The in-memory reference, for tests only (see {@link ValidateStageOptions}): the whole plaintext at once. */
async function validateWhole(ctx: StageContext, batch: Batch, key: Buffer, vctx: ValidationContext): Promise<StreamedValidation> {
  const plaintext = await readSealedAll(ctx.dataDir.payloadFile(batch.id), key);
  try {
    const result = validateBatch(plaintext, vctx);
    if (result.accepted > 0 && batch.lane === 'live') {
      await writeSealed(ctx.dataDir.acceptedFile(batch.id), key, Buffer.from(JSON.stringify({
        batchId: batch.id, schema: result.schema, records: result.acceptedRecords, indexes: result.acceptedIndexes,
      })));
    }
    const { acceptedRecords: _r, acceptedIndexes: _i, ...rest } = result;
    return rest;
  } finally {
    plaintext.fill(0);
  }
}
