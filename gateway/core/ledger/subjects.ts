/**
 * The subject index: for each batch, one row holding the sorted (keyed hash of a BSN, record
 * index) pairs of its records. The validate stage writes a batch's row in one statement
 * whatever its size — per-record rows cost the stage half its throughput — and a subject
 * request, which is rare, binary-searches every batch's row.
 *
 * Rows written before the hash became AES-based (gateway/core/sealed-blob.ts) hold
 * HMAC-SHA256 prefixes; they are not rewritten: a request looks for every hash the BSN may
 * be indexed under (`DataKeys.subjectLookupHashes`), so old rows are still found and erased.
 */
import type { LedgerHandle } from './ledger.js';

/** Bytes of the keyed hash kept per record (128 bits: collisions are not a concern). */
export const SUBJECT_HASH_BYTES = 16;
const ENTRY = SUBJECT_HASH_BYTES + 4;

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
 * 4 bytes are ordered by the whole hash afterwards.
 */
function pack(e: SubjectEntries): Buffer {
  const { hashes, stride, records, count } = e;
  const keys = new BigUint64Array(count);
  const halves = new Uint32Array(keys.buffer);
  const le = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
  for (let j = 0; j < count; j++) {
    halves[le ? 2 * j + 1 : 2 * j] = hashes.readUInt32BE(j * stride);
    halves[le ? 2 * j : 2 * j + 1] = j;
  }
  keys.sort();
  const order = Array.from(keys, (k) => Number(k & 0xffffffffn));
  const hashOf = (j: number) => hashes.subarray(j * stride, j * stride + SUBJECT_HASH_BYTES);
  for (let a = 0; a < count;) {
    const hi = keys[a]! >> 32n;
    let b = a + 1;
    while (b < count && keys[b]! >> 32n === hi) b++;
    if (b - a > 1) {
      const run = order.slice(a, b).sort((x, y) => Buffer.compare(hashOf(x), hashOf(y)) || records[x]! - records[y]!);
      for (let k = a; k < b; k++) order[k] = run[k - a]!;
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

export class SubjectRepo {
  constructor(private readonly h: LedgerHandle) {}

  /** Replace a batch's entries (a rerun of validation writes the same set again). */
  async replaceForBatch(batchId: string, entries: SubjectEntries): Promise<void> {
    const row = { batch_id: batchId, records: entries.count, entries: pack(entries).toString('base64') };
    await this.h.writeTx(async (tx) => {
      await tx.deleteFrom('subject_index').where('batch_id', '=', batchId).execute();
      if (entries.count > 0) await tx.insertInto('subject_index').values(row).execute();
    });
  }

  /**
   * Every batch and record position indexed under any of `subjects` (the hashes one BSN may
   * be indexed under), batch by batch (one row in memory at a time).
   */
  async find(subjects: readonly Buffer[]): Promise<{ batch_id: string; record: number }[]> {
    const ids = await this.h.db.selectFrom('subject_index').select('batch_id').orderBy('batch_id').execute();
    const out: { batch_id: string; record: number }[] = [];
    for (const { batch_id } of ids) {
      const row = await this.h.db.selectFrom('subject_index').select('entries').where('batch_id', '=', batch_id).executeTakeFirst();
      if (!row) continue;
      const buf = Buffer.from(row.entries, 'base64');
      const records = new Set(subjects.flatMap((s) => lookup(buf, s)));
      for (const record of [...records].sort((a, b) => a - b)) out.push({ batch_id, record });
    }
    return out;
  }

  /** Drop the entries under any of `subjects` from one batch's row. */
  async remove(subjects: readonly Buffer[], batchId: string): Promise<void> {
    await this.h.writeTx(async (tx) => {
      const row = await tx.selectFrom('subject_index').select('entries').where('batch_id', '=', batchId).executeTakeFirst();
      if (!row) return;
      const buf = Buffer.from(row.entries, 'base64');
      const keys = subjects.map((s) => s.subarray(0, SUBJECT_HASH_BYTES));
      const n = buf.length / ENTRY;
      const records = new Uint32Array(n);
      const kept: Buffer[] = [];
      for (let i = 0; i < n; i++) {
        const h = buf.subarray(i * ENTRY, i * ENTRY + SUBJECT_HASH_BYTES);
        if (keys.some((k) => h.equals(k))) continue;
        records[kept.length] = buf.readUInt32BE(i * ENTRY + SUBJECT_HASH_BYTES);
        kept.push(h);
      }
      const entries = { hashes: Buffer.concat(kept), stride: SUBJECT_HASH_BYTES, records, count: kept.length };
      await tx.updateTable('subject_index').set({ records: kept.length, entries: pack(entries).toString('base64') }).where('batch_id', '=', batchId).execute();
    });
  }
}
