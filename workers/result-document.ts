/**
 * The result plaintext (README "Handing records on"): what became of each accepted record of a batch, for
 * the partner — ids, counts, outcomes, the service's codes and messages and the partner's own
 * references. Never a record's content.
 */
import type { Batch, Handoff, HandoffOutcomeRow } from '../gateway/core/ledger/index.js';

export interface ResultOutcome {
  record: number;
  reference?: string;
  outcome: 'created' | 'exists' | 'failed';
  code?: string;
  message?: string;
}

export interface ResultDocument {
  type: 'pgw.result';
  version: 1;
  /** The handoff version this result answers (a reprocessed batch is handed off again: 2, 3, …). */
  resultVersion: number;
  /** SHA-256 of the result this one replaces (the previous version's). */
  supersedes?: string;
  batchId: string;
  partner: string;
  fileName: string;
  sha256: string;
  reference: string | null;
  schema: string | null;
  confirmedAt: string;
  counts: { records: number; created: number; exists: number; failed: number };
  outcomes: ResultOutcome[];
}

export function buildResultDocument(
  batch: Batch, handoff: Handoff, rows: HandoffOutcomeRow[],
  extra: { references: ReadonlyMap<number, string>; messages: ReadonlyMap<number, string>; supersedes?: string },
): ResultDocument {
  const counts = { records: rows.length, created: 0, exists: 0, failed: 0 };
  const outcomes = rows.map((r): ResultOutcome => {
    counts[r.outcome]++;
    const ref = extra.references.get(r.record);
    const msg = extra.messages.get(r.record);
    return { record: r.record, ...(ref !== undefined ? { reference: ref } : {}), outcome: r.outcome, ...(r.code ? { code: r.code } : {}), ...(msg ? { message: msg } : {}) };
  });
  return {
    type: 'pgw.result',
    version: 1,
    resultVersion: handoff.version,
    ...(extra.supersedes ? { supersedes: extra.supersedes } : {}),
    batchId: batch.id,
    partner: batch.partner_id,
    fileName: batch.file_name,
    sha256: batch.sha256,
    reference: batch.reference,
    schema: batch.schema,
    confirmedAt: handoff.confirmed_at ?? handoff.updated_at,
    counts,
    outcomes,
  };
}
