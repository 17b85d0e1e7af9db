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
import { validateJsonStream, type StreamedValidation } from '../schemas/batch-validator.js';
import { rejectBatch, type StageContext } from './stage-context.js';

/** Sealed payloads above this size are validated as a stream (JSON) rather than in memory. */
export const STREAM_ABOVE_BYTES = 4 * 1024 * 1024;

export interface ValidateStageOptions {
  /** Tests: where the streaming path starts (default {@link STREAM_ABOVE_BYTES}). */
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
    // Subject requests (AVG): where each person's record is, under a keyed hash of the BSN.
    onSubject: (record, bsn) => subjects.add(record, bsn),
  };
  const subjects = ctx.ledger.subjects.writer(batch.id, (blocks) => ctx.dataKeys.subjectHashBlocks(blocks));

  let result: StreamedValidation;
  try {
    // Big JSON streams through in bounded memory; small batches (one pass in memory is
    // faster) and CSV are read whole.
    const big = (await fsp.stat(payload)).size > (opts.streamAboveBytes ?? STREAM_ABOVE_BYTES);
    result = big && (await looksLikeJsonObject(payload, key))
      ? await validateJsonStreaming(ctx, batch, key, vctx, subjects)
      : await validateWhole(ctx, batch, key, vctx);
  } catch (err) {
    if (err instanceof PgwError && !err.retryable) {
      await subjects.discard();
      await rejectBatch(ctx, batch, 'validate', err);
      return;
    }
    throw err;
  }

  await subjects.finish();
  const outcome: Outcome = result.accepted === result.total ? 'accepted' : result.accepted === 0 ? 'rejected' : 'partially_accepted';
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

/**
 * The plaintext starts (after white space and a byte-order mark) with `{`: a JSON batch
 * envelope. A top-level `[` names no schema and stays on the in-memory path, which reports
 * it exactly as before.
 */
async function looksLikeJsonObject(file: string, key: Buffer): Promise<boolean> {
  for await (const chunk of readSealed(file, key)) {
    let i = chunk[0] === 0xef && chunk[1] === 0xbb && chunk[2] === 0xbf ? 3 : 0;
    while (chunk[i] === 0x20 || chunk[i] === 0x09 || chunk[i] === 0x0a || chunk[i] === 0x0d) i++;
    return chunk[i] === 0x7b; // only the first chunk (1 MiB): a batch is not mostly white space
  }
  return false;
}

/**
 * JSON: the accepted records' exact bytes stream into the sealed `accepted` file (same JSON
 * document as before: batchId, schema, records, indexes), published only if any.
 */
async function validateJsonStreaming(ctx: StageContext, batch: Batch, key: Buffer, vctx: ValidationContext, subjects: SubjectIndexWriter): Promise<StreamedValidation> {
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
    const result = await validateJsonStream(() => readSealed(ctx.dataDir.payloadFile(batch.id), key), vctx, async (accepted) => {
      await subjects.flush(); // full index parts go to the ledger as they fill, not all at the end
      if (!writer || accepted.length === 0) return;
      const parts: Buffer[] = [];
      for (const { raw, index } of accepted) {
        parts.push(count === 0 ? Buffer.from(`{"batchId":${JSON.stringify(batch.id)},"records":[`) : comma, raw);
        indexes.add(index);
        count += 1;
      }
      await writer.writeParts(parts);
    }, async () => {
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

/** CSV (and anything not JSON): the whole plaintext in memory, as before. */
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
