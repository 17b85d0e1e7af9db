/**
 * What the API shows of a batch and its acks: ids, sizes, times, codes and counts — never a
 * record, never a decrypted byte. The same facts `pgw batches show` prints.
 */
import type { AckPushRow, AckRow, Batch, BatchEvent, PartnerAck, ResultRow } from '../core/ledger/index.js';
import { ERROR_CODES, type ErrorCode } from '../core/errors.js';

export type PublicStatus = 'received' | 'processing' | 'accepted' | 'partially_accepted' | 'rejected';

export function publicStatus(b: Batch): PublicStatus {
  if (b.outcome) return b.outcome;
  return b.stage === 'decrypt' ? 'received' : 'processing';
}

export function batchLinks(batchId: string): { self: string; ack: string; result: string } {
  return { self: `/v1/batches/${batchId}`, ack: `/v1/batches/${batchId}/ack`, result: `/v1/batches/${batchId}/result` };
}

function errorView(code: string | null): { code: string; message: string } | null {
  if (!code) return null;
  const info = (ERROR_CODES as Record<string, { message: string } | undefined>)[code as ErrorCode];
  return { code, message: info?.message ?? code };
}

function common(b: Batch) {
  return {
    batchId: b.id,
    fileName: b.file_name,
    sha256: b.sha256,
    size: Number(b.size),
    receivedAt: b.received_at,
    test: b.lane === 'test',
    status: publicStatus(b),
    duplicateOf: b.duplicate_of,
    links: batchLinks(b.id),
  };
}

/** The 202/200 answer to an upload; `retried` when the same name and bytes were received before. */
export function uploadView(b: Batch, retried: boolean) {
  return { ...common(b), retried };
}

export function batchView(
  b: Batch, events: BatchEvent[], ack: AckRow | undefined, push: AckPushRow | undefined, result?: ResultRow, resultPush?: AckPushRow,
) {
  return {
    ...common(b),
    channel: b.channel,
    error: errorView(b.error_code),
    records: b.records_total === null ? null : { total: b.records_total, accepted: b.records_accepted ?? 0, rejected: b.records_rejected ?? 0 },
    processedAt: b.processed_at,
    ack: ack ? {
      version: ack.version,
      sha256: ack.sha256,
      createdAt: ack.created_at,
      firstDownloadedAt: ack.first_downloaded_at,
      downloadCount: ack.download_count,
      pushedAt: push?.delivered_at ?? null,
    } : null,
    // What the account service did with the accepted records (live lane only), once it reported.
    result: result ? {
      version: result.version,
      sha256: result.sha256,
      createdAt: result.created_at,
      firstDownloadedAt: result.first_downloaded_at,
      downloadCount: result.download_count,
      pushedAt: resultPush?.delivered_at ?? null,
    } : null,
    events: events.map((e) => ({ at: e.at, stage: e.stage, outcome: e.outcome, code: e.code })),
  };
}

export function ackListView(rows: PartnerAck[]) {
  return {
    acks: rows.map((a) => ({
      batchId: a.batch_id,
      fileName: a.file_name,
      test: a.lane === 'test',
      channel: a.channel,
      status: a.outcome,
      version: a.version,
      sha256: a.sha256,
      createdAt: a.created_at,
      firstDownloadedAt: a.first_downloaded_at,
      downloadCount: a.download_count,
      pushedAt: a.pushed_at,
      links: batchLinks(a.batch_id),
    })),
  };
}
