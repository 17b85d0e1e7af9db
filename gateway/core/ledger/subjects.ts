/**
 * The subject index: for each batch, one row holding the sorted (keyed hash of a BSN, record
 * index) pairs of its records. The validate stage writes a batch's row in one statement
 * whatever its size — per-record rows cost the stage half its throughput — and a subject
 * request, which is rare, binary-searches every batch's row.
 */
import type { LedgerHandle } from './ledger.js';

/** Bytes of the keyed hash kept per record (128 bits: collisions are not a concern). */
export const SUBJECT_HASH_BYTES = 16;
const ENTRY = SUBJECT_HASH_BYTES + 4;

export interface SubjectEntry {
  subject: Buffer;
  record: number;
}

function pack(entries: SubjectEntry[]): Buffer {
  // Each entry as 40 hex digits (hash prefix, then the index): a plain string sort is the
  // byte order, and several times faster than sorting with a Buffer comparator.
  const keys = entries.map((e) => e.subject.toString('hex', 0, SUBJECT_HASH_BYTES) + e.record.toString(16).padStart(8, '0'));
  keys.sort();
  return Buffer.from(keys.join(''), 'hex');
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
  async replaceForBatch(batchId: string, entries: SubjectEntry[]): Promise<void> {
    const row = { batch_id: batchId, records: entries.length, entries: pack(entries).toString('base64') };
    await this.h.writeTx(async (tx) => {
      await tx.deleteFrom('subject_index').where('batch_id', '=', batchId).execute();
      if (entries.length > 0) await tx.insertInto('subject_index').values(row).execute();
    });
  }

  /** Every batch and record position of `subject`, batch by batch (one row in memory at a time). */
  async find(subject: Buffer): Promise<{ batch_id: string; record: number }[]> {
    const ids = await this.h.db.selectFrom('subject_index').select('batch_id').orderBy('batch_id').execute();
    const out: { batch_id: string; record: number }[] = [];
    for (const { batch_id } of ids) {
      const row = await this.h.db.selectFrom('subject_index').select('entries').where('batch_id', '=', batch_id).executeTakeFirst();
      if (!row) continue;
      for (const record of lookup(Buffer.from(row.entries, 'base64'), subject)) out.push({ batch_id, record });
    }
    return out;
  }

  /** Drop `subject`'s entries from one batch's row. */
  async remove(subject: Buffer, batchId: string): Promise<void> {
    await this.h.writeTx(async (tx) => {
      const row = await tx.selectFrom('subject_index').select('entries').where('batch_id', '=', batchId).executeTakeFirst();
      if (!row) return;
      const buf = Buffer.from(row.entries, 'base64');
      const key = subject.subarray(0, SUBJECT_HASH_BYTES);
      const kept: SubjectEntry[] = [];
      for (let i = 0; i < buf.length; i += ENTRY) {
        const h = buf.subarray(i, i + SUBJECT_HASH_BYTES);
        if (!h.equals(key)) kept.push({ subject: h, record: buf.readUInt32BE(i + SUBJECT_HASH_BYTES) });
      }
      await tx.updateTable('subject_index').set({ records: kept.length, entries: pack(kept).toString('base64') }).where('batch_id', '=', batchId).execute();
    });
  }
}
