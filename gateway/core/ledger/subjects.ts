/** The subject index: keyed hashes of BSNs per batch and record (see admin/subjects.ts). */
import type { LedgerHandle } from './ledger.js';

export class SubjectRepo {
  constructor(private readonly h: LedgerHandle) {}

  /** Replace a batch's entries (a rerun of validation writes the same set again). */
  async replaceForBatch(batchId: string, entries: { subject: string; record: number }[]): Promise<void> {
    await this.h.writeTx(async (tx) => {
      await tx.deleteFrom('subject_index').where('batch_id', '=', batchId).execute();
      for (let i = 0; i < entries.length; i += 300) {
        const rows = entries.slice(i, i + 300).map((e) => ({ subject: e.subject, batch_id: batchId, record: e.record }));
        await tx.insertInto('subject_index').values(rows).onConflict((oc) => oc.doNothing()).execute();
      }
    });
  }

  async find(subject: string): Promise<{ batch_id: string; record: number }[]> {
    return this.h.db.selectFrom('subject_index').select(['batch_id', 'record']).where('subject', '=', subject)
      .orderBy('batch_id').orderBy('record').execute();
  }

  async remove(subject: string, batchId: string): Promise<void> {
    await this.h.db.deleteFrom('subject_index').where('subject', '=', subject).where('batch_id', '=', batchId).execute();
  }

  async removeBatch(batchId: string): Promise<void> {
    await this.h.db.deleteFrom('subject_index').where('batch_id', '=', batchId).execute();
  }
}
