/**
 * The subject index: for each batch, rows ("parts") of up to {@link PART_ENTRIES} sorted
 * (keyed hash of a BSN, record index) pairs. The validate stage writes a part per 65,536
 * records while it reads the batch — per-record rows cost the stage half its throughput, one
 * row per batch held a 4-million-record batch's whole index in the worker's memory — and a
 * subject request, which is rare, binary-searches every part.
 *
 * Entries written before the hash became AES-based (gateway/core/sealed-blob.ts) hold
 * HMAC-SHA256 prefixes; they are not rewritten: a request looks for every hash the BSN may
 * be indexed under (`DataKeys.subjectLookupHashes`), so old rows are still found and erased.
 */
import type { LedgerHandle } from './ledger.js';
import { SUBJECT_BLOCK_BYTES, writeSubjectBlock } from '../sealed-blob.js';

/** Bytes of the keyed hash kept per record (128 bits: collisions are not a concern). */
export const SUBJECT_HASH_BYTES = 16;
const ENTRY = SUBJECT_HASH_BYTES + 4;
/** Entries per index row (1.3 MB packed). */
export const PART_ENTRIES = 65_536;

/**
 * One batch's index entries before sorting: `hashes` holds `count` keyed hashes of
 * {@link SUBJECT_HASH_BYTES} each (more bytes per hash are ignored: `stride`), `records` the
 * record index of each.
 */
export interface SubjectEntries {
  hashes: Buffer;
  stride: number;
  records: Uint32Array;
  count: number;
}

/**
 * The packed row: entries sorted by (hash, record) as bytes. Sorted natively as 64-bit
 * integers (first 4 hash bytes, then the entry's position); the rare runs that share those
 * 4 bytes are ordered by the whole hash afterwards. The sorted keys are read back as their
 * two 32-bit halves: a BigInt operation per entry allocates, and cost most of this function.
 */
function pack(e: SubjectEntries): Buffer {
  const { hashes, stride, records, count } = e;
  const keys = new BigUint64Array(count);
  const halves = new Uint32Array(keys.buffer);
  const le = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
  const HI = le ? 1 : 0;
  const LO = 1 - HI;
  for (let j = 0; j < count; j++) {
    halves[2 * j + HI] = hashes.readUInt32BE(j * stride);
    halves[2 * j + LO] = j;
  }
  keys.sort();
  const order = new Uint32Array(count);
  for (let k = 0; k < count; k++) order[k] = halves[2 * k + LO]!;
  const hashOf = (j: number) => hashes.subarray(j * stride, j * stride + SUBJECT_HASH_BYTES);
  for (let a = 0; a < count;) {
    const hi = halves[2 * a + HI]!;
    let b = a + 1;
    while (b < count && halves[2 * b + HI] === hi) b++;
    if (b - a > 1) {
      const run = Array.from(order.subarray(a, b)).sort((x, y) => Buffer.compare(hashOf(x), hashOf(y)) || records[x]! - records[y]!);
      order.set(run, a);
    }
    a = b;
  }
  const out = Buffer.allocUnsafe(count * ENTRY);
  for (let k = 0; k < count; k++) {
    const j = order[k]!;
    hashes.copy(out, k * ENTRY, j * stride, j * stride + SUBJECT_HASH_BYTES);
    out.writeUInt32BE(records[j]!, k * ENTRY + SUBJECT_HASH_BYTES);
  }
  return out;
}

/** Record indexes of `subject` in a packed row (binary search, then the run of equal hashes). */
function lookup(buf: Buffer, subject: Buffer): number[] {
  const key = subject.subarray(0, SUBJECT_HASH_BYTES);
  const at = (i: number) => buf.subarray(i * ENTRY, i * ENTRY + SUBJECT_HASH_BYTES);
  let lo = 0;
  let hi = buf.length / ENTRY;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (Buffer.compare(at(mid), key) < 0) lo = mid + 1;
    else hi = mid;
  }
  const out: number[] = [];
  for (let i = lo; i < buf.length / ENTRY && at(i).equals(key); i++) out.push(buf.readUInt32BE(i * ENTRY + SUBJECT_HASH_BYTES));
  return out;
}

/**
 * One batch's index as it is validated: BSNs are kept as subject blocks (never strings),
 * hashed a part at a time in one call of `hash`, and each full part is written (the first
 * write also drops what an earlier run of the stage wrote). Call {@link flush} between
 * chunks of work, {@link finish} at the end, or {@link discard} when the batch is rejected.
 */
export class SubjectIndexWriter {
  private readonly blocks = Buffer.alloc(PART_ENTRIES * SUBJECT_BLOCK_BYTES);
  private readonly records = new Uint32Array(PART_ENTRIES);
  private count = 0;
  private parts = 0;
  private readonly ready: string[] = [];
  private cleared = false;

  constructor(private readonly h: LedgerHandle, private readonly batchId: string, private readonly hash: (blocks: Buffer) => Buffer) {}

  /** Record `record` as holding `bsn` (9 ASCII digits). */
  add(record: number, bsn: string): void {
    writeSubjectBlock(this.blocks, this.count * SUBJECT_BLOCK_BYTES, bsn);
    this.records[this.count++] = record;
    if (this.count === PART_ENTRIES) this.seal();
  }

  private seal(): void {
    const used = this.blocks.subarray(0, this.count * SUBJECT_BLOCK_BYTES);
    const hashes = this.hash(used);
    used.fill(0);
    this.ready.push(pack({ hashes, stride: SUBJECT_BLOCK_BYTES, records: this.records, count: this.count }).toString('base64'));
    this.count = 0;
  }

  /** Write the parts that are full. */
  async flush(): Promise<void> {
    if (this.ready.length === 0 && this.cleared) return;
    const rows = this.ready.splice(0).map((entries) => ({ batch_id: this.batchId, part: this.parts++, records: Buffer.byteLength(entries, 'base64') / ENTRY, entries }));
    await this.h.writeTx(async (tx) => {
      if (!this.cleared) await tx.deleteFrom('subject_index_parts').where('batch_id', '=', this.batchId).execute();
      for (const row of rows) await tx.insertInto('subject_index_parts').values(row).execute();
    });
    this.cleared = true;
  }

  /** Write the rest: the batch's index is complete. */
  async finish(): Promise<void> {
    if (this.count > 0) this.seal();
    await this.flush();
  }

  /** The batch was rejected as a whole: drop what was written, keep nothing in memory. */
  async discard(): Promise<void> {
    this.blocks.fill(0);
    this.count = 0;
    this.ready.length = 0;
    this.cleared = false;
    this.parts = 0;
    await this.flush();
  }
}

export class SubjectRepo {
  constructor(private readonly h: LedgerHandle) {}

  /** A writer of `batchId`'s index, replacing what it had (see {@link SubjectIndexWriter}). */
  writer(batchId: string, hash: (blocks: Buffer) => Buffer): SubjectIndexWriter {
    return new SubjectIndexWriter(this.h, batchId, hash);
  }

  /**
   * Every batch and record position indexed under any of `subjects` (the hashes one BSN may
   * be indexed under), part by part (one part in memory at a time).
   */
  async find(subjects: readonly Buffer[]): Promise<{ batch_id: string; record: number }[]> {
    const keys = await this.h.db.selectFrom('subject_index_parts').select(['batch_id', 'part']).orderBy('batch_id').orderBy('part').execute();
    const byBatch = new Map<string, Set<number>>();
    for (const { batch_id, part } of keys) {
      const row = await this.h.db.selectFrom('subject_index_parts').select('entries').where('batch_id', '=', batch_id).where('part', '=', part).executeTakeFirst();
      if (!row) continue;
      const buf = Buffer.from(row.entries, 'base64');
      for (const s of subjects) {
        for (const record of lookup(buf, s)) {
          if (!byBatch.has(batch_id)) byBatch.set(batch_id, new Set());
          byBatch.get(batch_id)!.add(record);
        }
      }
    }
    return [...byBatch].flatMap(([batch_id, records]) => [...records].sort((a, b) => a - b).map((record) => ({ batch_id, record })));
  }

  /** Drop a batch's whole index (retention purged its records: nothing is left to find). */
  async forget(batchId: string): Promise<void> {
    await this.h.db.deleteFrom('subject_index_parts').where('batch_id', '=', batchId).execute();
  }

  /** Batches with index entries (retention tests, diagnostics). */
  async indexedBatches(): Promise<string[]> {
    const rows = await this.h.db.selectFrom('subject_index_parts').select('batch_id').distinct().execute();
    return rows.map((r) => r.batch_id);
  }

  /** Drop the entries under any of `subjects` from one batch's parts. */
  async remove(subjects: readonly Buffer[], batchId: string): Promise<void> {
    await this.rewrite(subjects, batchId, null);
  }

  /**
   * Move one batch's entries under any of `subjects` to the hash `to` (a corrected BSN of a
   * record no longer stored: the index entry is all there is to follow it). Idempotent.
   */
  async rekey(subjects: readonly Buffer[], batchId: string, to: Buffer): Promise<void> {
    await this.rewrite(subjects, batchId, to.subarray(0, SUBJECT_HASH_BYTES));
  }

  /** Each part holding entries under `subjects`, with them dropped (`to` null) or moved to `to`, re-sorted. */
  private async rewrite(subjects: readonly Buffer[], batchId: string, to: Buffer | null): Promise<void> {
    const keys = subjects.map((s) => s.subarray(0, SUBJECT_HASH_BYTES));
    await this.h.writeTx(async (tx) => {
      const rows = await tx.selectFrom('subject_index_parts').select(['part', 'entries']).where('batch_id', '=', batchId).execute();
      for (const row of rows) {
        const buf = Buffer.from(row.entries, 'base64');
        const n = buf.length / ENTRY;
        const records = new Uint32Array(n);
        const kept: Buffer[] = [];
        let hit = false;
        for (let i = 0; i < n; i++) {
          let h: Buffer = buf.subarray(i * ENTRY, i * ENTRY + SUBJECT_HASH_BYTES);
          if (keys.some((k) => h.equals(k))) {
            hit = true;
            if (!to) continue;
            h = to;
          }
          records[kept.length] = buf.readUInt32BE(i * ENTRY + SUBJECT_HASH_BYTES);
          kept.push(h);
        }
        if (!hit) continue;
        const entries = pack({ hashes: Buffer.concat(kept), stride: SUBJECT_HASH_BYTES, records, count: kept.length }).toString('base64');
        await tx.updateTable('subject_index_parts').set({ records: kept.length, entries }).where('batch_id', '=', batchId).where('part', '=', row.part).execute();
      }
    });
  }
}
