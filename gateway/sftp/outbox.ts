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
 * The delivery receipt: find the ack row for this file (by the sha-256 of exactly the
 * bytes we served, which also tells live from test lane and one ack version from the
 * next; else the newest row of that name) and mark it downloaded. Never fails the download.
 */
async function recordReceipt(ctx: SessionContext, h: OutboxFileHandle): Promise<void> {
  if (isResultFileName(h.name)) return recordResultReceipt(ctx, h);
  if (isDocumentEntry(h.name)) return recordDocumentReceipt(ctx, h);
  try {
    const sha256 = await hashHandle(h);
    let rows = await ctx.ledger.batches.acksByOutboxName(ctx.partnerId, [h.name]);
    for (let waited = 0, step = 20; !rows.some((r) => r.sha256 === sha256) && waited < RECEIPT_ROW_WAIT_MS; waited += step, step = Math.min(2 * step, 500)) {
      await new Promise((r) => setTimeout(r, step));
      rows = await ctx.ledger.batches.acksByOutboxName(ctx.partnerId, [h.name]);
    }
    const row = pickAck(rows, sha256);
    if (!row) {
      ctx.log.warn('outbox file has no ack row', { file: h.name, lane: h.lane });
      return;
    }
    await ctx.ledger.batches.markAckDownloaded(row.batch_id, row.version, 'sftp');
    ctx.log.info('ack downloaded', { batch: row.batch_id, version: row.version, lane: h.lane });
  } catch (err) {
    ctx.log.warn('ack receipt failed', { file: h.name, err: serializeError(err) });
  }
}

/**
 * The receipt of a result document: its row is recorded before the batch's results are
 * offered anywhere else, but the outbox link comes first, so the same short wait as for acks.
 */
async function recordResultReceipt(ctx: SessionContext, h: OutboxFileHandle): Promise<void> {
  try {
    const sha256 = await hashHandle(h);
    let rows = await ctx.ledger.handoffs.resultsByOutboxName(ctx.partnerId, [h.name]);
    for (let waited = 0, step = 20; !rows.some((r) => r.sha256 === sha256) && waited < RECEIPT_ROW_WAIT_MS; waited += step, step = Math.min(2 * step, 500)) {
      await new Promise((r) => setTimeout(r, step));
      rows = await ctx.ledger.handoffs.resultsByOutboxName(ctx.partnerId, [h.name]);
    }
    const row = rows.find((r) => r.sha256 === sha256) ?? [...rows].sort((a, b) => b.version - a.version)[0];
    if (!row) {
      ctx.log.warn('outbox file has no result row', { file: h.name, lane: h.lane });
      return;
    }
    await ctx.ledger.handoffs.markResultDownloaded(row.batch_id, row.version, 'sftp');
    ctx.log.info('result downloaded', { batch: row.batch_id, version: row.version });
  } catch (err) {
    ctx.log.warn('result receipt failed', { file: h.name, err: serializeError(err) });
  }
}

/** The receipt of an outbound document: its open row of that name, if the bytes served are its file. */
async function recordDocumentReceipt(ctx: SessionContext, h: OutboxFileHandle): Promise<void> {
  try {
    const sha256 = await hashHandle(h);
    const doc = await ctx.ledger.documents.openByOutboxName(ctx.partnerId, h.name);
    if (!doc || doc.sha256 !== sha256) {
      ctx.log.warn('outbox file has no document row', { file: h.name });
      return;
    }
    await ctx.ledger.documents.markDownloaded(doc.id, 'sftp');
    ctx.log.info('document downloaded', { document: doc.id });
  } catch (err) {
    ctx.log.warn('document receipt failed', { file: h.name, err: serializeError(err) });
  }
}

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
