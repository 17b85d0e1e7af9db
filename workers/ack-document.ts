/**
 * The ack plaintext (`pgw.ack`), built only from ledger columns: ids, counts, codes,
 * hashes and the partner's own references — never record content.
 */
import type { Batch } from '../gateway/core/ledger/index.js';
import { ERROR_CODES, type ErrorCode } from '../gateway/core/errors.js';
import type { KeyNotice } from '../keys/key-notices.js';

export interface AckIssue {
  record: number;
  reference?: string;
  path: string;
  code: string;
  message: string;
}

export interface AckDocument {
  type: 'pgw.ack';
  version: 1;
  ackVersion: number;
  supersedes?: string;
  batchId: string;
  partner: string;
  fileName: string;
  sha256: string;
  size: number;
  receivedAt: string;
  processedAt: string;
  status: 'accepted' | 'partially_accepted' | 'rejected';
  test: boolean;
  signer: { fingerprint: string; signedAt: string } | null;
  schema: string | null;
  reference: string | null;
  /** `erased`: records erased at the person's request since the upload (subject.erased warnings); only when there are any. */
  records: { total: number; accepted: number; rejected: number; erased?: number };
  errors: AckIssue[];
  warnings: AckIssue[];
  reason: { code: string; message: string } | null;
  /** Key notices (expiring, pending, gateway rotation): always present; empty when there is nothing to say. */
  notices: KeyNotice[];
  duplicateOf?: string;
}

export function buildAckDocument(batch: Batch, opts: { ackVersion: number; supersedes?: string; notices?: KeyNotice[] }): AckDocument {
  if (!batch.outcome) throw new Error('ack requested for an undecided batch');
  const issues = batch.record_issues ? (JSON.parse(batch.record_issues) as { errors: AckIssue[]; warnings: AckIssue[] }) : { errors: [], warnings: [] };
  let reason: AckDocument['reason'] = null;
  if (batch.error_code) {
    const detail = batch.error_detail ? (JSON.parse(batch.error_detail) as { message?: string }) : {};
    const fallback = (ERROR_CODES as Record<string, { message: string }>)[batch.error_code]?.message ?? 'rejected';
    let message = detail.message ?? fallback;
    if (batch.error_code === 'batch.duplicate' && batch.duplicate_of) {
      message = `the same file was already received as batch ${batch.duplicate_of}; it is not processed again`;
    }
    reason = { code: batch.error_code as ErrorCode, message };
  }
  const doc: AckDocument = {
    type: 'pgw.ack',
    version: 1,
    ackVersion: opts.ackVersion,
    batchId: batch.id,
    partner: batch.partner_id,
    fileName: batch.file_name,
    sha256: batch.sha256,
    size: Number(batch.size),
    receivedAt: batch.received_at,
    processedAt: batch.processed_at ?? batch.updated_at,
    status: batch.outcome,
    test: batch.lane === 'test',
    signer: batch.signer_fingerprint && batch.signed_at ? { fingerprint: batch.signer_fingerprint, signedAt: batch.signed_at } : null,
    schema: batch.schema,
    reference: batch.reference,
    records: { total: batch.records_total ?? 0, accepted: batch.records_accepted ?? 0, rejected: batch.records_rejected ?? 0 },
    errors: issues.errors,
    warnings: issues.warnings,
    reason,
    notices: opts.notices ?? [],
  };
  const erased = issues.warnings.filter((w) => w.code === 'subject.erased').length;
  if (erased) doc.records.erased = erased;
  if (opts.supersedes) doc.supersedes = opts.supersedes;
  if (batch.duplicate_of) doc.duplicateOf = batch.duplicate_of;
  return doc;
}
