/**
 * `/outbox` and `/outbox/test`: the partner's acks, results and outbound documents (live lane), a real directory
 * (`dataDir.outboxFor(partner, lane)`). Read and delete only; only regular files named like
 * an ack or a result are visible; symlinks are never followed (lstat for listings, O_NOFOLLOW on open,
 * O_NONBLOCK so a planted FIFO cannot block us). A complete download is a delivery receipt.
 */
import { createHash } from 'node:crypto';
import { constants as fsc, promises as fsp } from 'node:fs';
import path from 'node:path';
import type { Lane } from '../core/ledger/schema.js';
import type { AckRow } from '../core/ledger/index.js';
import { serializeError } from '../core/logger.js';
import { isAckFileName, isOutboxFileName, isResultFileName } from '../core/file-names.js';
import { withdrawForRevokedKeys } from '../admin/outbound-documents.js';
import { ReadCoverage } from './read-coverage.js';
import { noSuchFile } from './status-map.js';
import type { OutboxFileHandle, SessionContext } from './session-context.js';
import { dirAttrs, entry, fileAttrs, TEST_DIR, type DirEntry, type FileAttrs } from './virtual-fs.js';

/** Largest READ we answer; bigger requests get a short read (clients continue). */
export const MAX_READ_BYTES = 64 * 1024;

/** The only names an outbox shows: acks and results (see core/file-names.ts). */
export function isAckName(name: string): boolean {
  return isOutboxFileName(name);
}

function fileIn(ctx: SessionContext, lane: Lane, name: string): string {
  if (!isAckName(name)) throw noSuchFile();
  return path.join(ctx.dataDir.outboxFor(ctx.partnerId, lane), name);
}

export async function listOutbox(ctx: SessionContext, lane: Lane): Promise<DirEntry[]> {
  const dir = ctx.dataDir.outboxFor(ctx.partnerId, lane);
  const out: DirEntry[] = [];
  if (lane === 'live') out.push(entry(TEST_DIR, dirAttrs(true), ctx.partnerId));
  const dirents = await fsp.readdir(dir, { withFileTypes: true }).catch(() => []);
  for (const d of dirents) {
    // Dirent types come from lstat semantics: a symlink is never isFile().
    if (!d.isFile() || !isAckName(d.name)) continue;
    const st = await fsp.lstat(path.join(dir, d.name)).catch(() => null);
    if (!st?.isFile()) continue;
    out.push(entry(d.name, fileAttrs(st.size, st.mtime), ctx.partnerId));
  }
  return out;
}

export async function statOutboxEntry(ctx: SessionContext, lane: Lane, name: string): Promise<FileAttrs> {
  if (lane === 'live' && name === TEST_DIR) return dirAttrs(true);
  const st = await fsp.lstat(fileIn(ctx, lane, name)).catch(() => null);
  if (!st?.isFile()) throw noSuchFile();
  return fileAttrs(st.size, st.mtime);
}

/** An outbound document (not an ack or a result name). */
function isDocumentEntry(name: string): boolean {
  return !isAckFileName(name) && !isResultFileName(name);
}

export async function openOutboxFile(ctx: SessionContext, lane: Lane, name: string): Promise<OutboxFileHandle> {
  const file = fileIn(ctx, lane, name);
  if (isDocumentEntry(name)) {
    // Never serve a document encrypted to a key revoked since (it is withdrawn now), nor one whose row is closed.
    await withdrawForRevokedKeys(ctx, ctx.partnerId);
    if (lane !== 'live' || !(await ctx.ledger.documents.openByOutboxName(ctx.partnerId, name))) throw noSuchFile();
  }
  let fh: Awaited<ReturnType<typeof fsp.open>>;
  try {
    fh = await fsp.open(file, fsc.O_RDONLY | fsc.O_NOFOLLOW | fsc.O_NONBLOCK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ELOOP' || code === 'ENOTDIR' || code === 'ENXIO') throw noSuchFile();
    throw err;
  }
  const st = await fh.stat().catch(() => null);
  if (!st?.isFile()) {
    await fh.close().catch(() => {});
    throw noSuchFile();
  }
  return { kind: 'outbox-file', lane, name, fh, size: st.size, mtime: st.mtime, coverage: new ReadCoverage(), receipt: null };
}

/** READ: the bytes at `offset` (at most {@link MAX_READ_BYTES}), or null at end of file. */
export async function readOutboxFile(ctx: SessionContext, h: OutboxFileHandle, offset: number, len: number): Promise<Buffer | null> {
  if (!Number.isSafeInteger(offset) || offset < 0 || offset >= h.size) {
    h.coverage.sawEof = true;
    maybeReceipt(ctx, h);
    return null;
  }
  const want = Math.max(0, Math.min(len, MAX_READ_BYTES, h.size - offset));
  if (want === 0) return Buffer.alloc(0);
  const buf = Buffer.allocUnsafe(want);
  const { bytesRead } = await h.fh.read(buf, 0, want, offset);
  if (bytesRead === 0) {
    h.coverage.sawEof = true;
    maybeReceipt(ctx, h);
    return null;
  }
  h.coverage.add(offset, offset + bytesRead);
  maybeReceipt(ctx, h);
  return buf.subarray(0, bytesRead);
}

/** CLOSE: waits for the receipt (if the file was fully read) so the ledger is current. */
export async function closeOutboxFile(ctx: SessionContext, h: OutboxFileHandle): Promise<void> {
  maybeReceipt(ctx, h);
  try {
    await h.receipt;
  } finally {
    await h.fh.close().catch(() => {});
  }
}

export async function removeOutboxEntry(ctx: SessionContext, lane: Lane, name: string): Promise<void> {
  const file = fileIn(ctx, lane, name);
  const st = await fsp.lstat(file).catch(() => null);
  if (!st?.isFile()) throw noSuchFile();
  await fsp.unlink(file);
}

function maybeReceipt(ctx: SessionContext, h: OutboxFileHandle): void {
  if (h.receipt || !h.coverage.covers(h.size)) return;
  h.receipt = recordReceipt(ctx, h);
  ctx.background(h.receipt);
}

/**
 * How long a receipt waits for the ack's ledger row. The ack stage links the ack into the
 * outbox just before it records the row (a crash in between must leave a file the retry
 * records, never a row without its file), so a partner polling by name can finish a
 * download in those few milliseconds; CLOSE waits for the receipt, so this also bounds how
 * long such a CLOSE may take.
 */
const RECEIPT_ROW_WAIT_MS = 3000;

/**
 * The delivery receipt: find the row of the document this file is (ack, result or outbound
 * document) and mark it downloaded. Never fails the download.
 */
async function recordReceipt(ctx: SessionContext, h: OutboxFileHandle): Promise<void> {
  if (isResultFileName(h.name)) return markReceipt(ctx, h, 'result', resultReceipt);
  if (isDocumentEntry(h.name)) return markReceipt(ctx, h, 'document', documentReceipt);
  return markReceipt(ctx, h, 'ack', ackReceipt);
}

/** What a served file's row is and how it is marked downloaded; null when it has no row. */
type ReceiptOf = (ctx: SessionContext, h: OutboxFileHandle, sha256: string) => Promise<{
  /** Marks the row downloaded; the fields of the log line. */
  mark(): Promise<Record<string, unknown>>;
} | { missing: Record<string, unknown> }>;

async function markReceipt(ctx: SessionContext, h: OutboxFileHandle, what: 'ack' | 'result' | 'document', receiptOf: ReceiptOf): Promise<void> {
  try {
    const receipt = await receiptOf(ctx, h, await hashHandle(h));
    if ('missing' in receipt) {
      ctx.log.warn(`outbox file has no ${what} row`, receipt.missing);
      return;
    }
    ctx.log.info(`${what} downloaded`, await receipt.mark());
  } catch (err) {
    ctx.log.warn(`${what} receipt failed`, { file: h.name, err: serializeError(err) });
  }
}

/**
 * The rows `fetch` finds for a served file, waiting briefly (with backoff) for one with the
 * sha-256 of exactly the bytes served: an ack's or result's row is recorded before it is
 * offered anywhere else, but its outbox link comes first.
 */
async function rowsOnceRecorded<R extends { sha256: string }>(fetch: () => Promise<R[]>, sha256: string): Promise<R[]> {
  let rows = await fetch();
  for (let waited = 0, step = 20; !rows.some((r) => r.sha256 === sha256) && waited < RECEIPT_ROW_WAIT_MS; waited += step, step = Math.min(2 * step, 500)) {
    await new Promise((r) => setTimeout(r, step));
    rows = await fetch();
  }
  return rows;
}

/** The ack row by the sha-256 (which also tells live from test lane and one version from the next), else the newest of that name. */
const ackReceipt: ReceiptOf = async (ctx, h, sha256) => {
  const row = pickAck(await rowsOnceRecorded(() => ctx.ledger.batches.acksByOutboxName(ctx.partnerId, [h.name]), sha256), sha256);
  if (!row) return { missing: { file: h.name, lane: h.lane } };
  return {
    async mark() {
      await ctx.ledger.batches.markAckDownloaded(row.batch_id, row.version, 'sftp');
      return { batch: row.batch_id, version: row.version, lane: h.lane };
    },
  };
};

/** The result row by the sha-256, else the highest version of that name. */
const resultReceipt: ReceiptOf = async (ctx, h, sha256) => {
  const rows = await rowsOnceRecorded(() => ctx.ledger.handoffs.resultsByOutboxName(ctx.partnerId, [h.name]), sha256);
  const row = rows.find((r) => r.sha256 === sha256) ?? [...rows].sort((a, b) => b.version - a.version)[0];
  if (!row) return { missing: { file: h.name, lane: h.lane } };
  return {
    async mark() {
      await ctx.ledger.handoffs.markResultDownloaded(row.batch_id, row.version, 'sftp');
      return { batch: row.batch_id, version: row.version };
    },
  };
};

/** An outbound document: its open row of that name, if the bytes served are its file. */
const documentReceipt: ReceiptOf = async (ctx, h, sha256) => {
  const doc = await ctx.ledger.documents.openByOutboxName(ctx.partnerId, h.name);
  if (!doc || doc.sha256 !== sha256) return { missing: { file: h.name } };
  return {
    async mark() {
      await ctx.ledger.documents.markDownloaded(doc.id, 'sftp');
      return { document: doc.id };
    },
  };
};

export function pickAck(rows: AckRow[], sha256: string): AckRow | undefined {
  const exact = rows.find((r) => r.sha256 === sha256);
  if (exact) return exact;
  return [...rows].sort((a, b) => (b.created_at.localeCompare(a.created_at)) || (b.version - a.version))[0];
}

async function hashHandle(h: OutboxFileHandle): Promise<string> {
  const hash = createHash('sha256');
  const buf = Buffer.allocUnsafe(MAX_READ_BYTES);
  let pos = 0;
  while (pos < h.size) {
    const { bytesRead } = await h.fh.read(buf, 0, Math.min(buf.length, h.size - pos), pos);
    if (bytesRead === 0) break;
    hash.update(buf.subarray(0, bytesRead));
    pos += bytesRead;
  }
  return hash.digest('hex');
}
