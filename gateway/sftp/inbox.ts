/**
 * `/inbox` and `/inbox/test`: a write-only drop box in front of the ingest service
 * (SFTPGo's `transfer.go` role). Final names stream into an ingest upload that is committed
 * on CLOSE — the client's OK means "durable and enqueued". Temp names are staged and
 * committed by the RENAME to a final name. Nothing a partner uploads can be read back.
 */
import { PgwError, isPgwError } from '../core/errors.js';
import type { Lane } from '../core/ledger/schema.js';
import { classifyUploadName, type NameKind } from '../core/file-names.js';
import type { UploadTarget } from '../ingest/ingest-service.js';
import { noSuchFile } from './status-map.js';
import type { SessionContext, UploadHandle } from './session-context.js';
import { dirAttrs, entry, fileAttrs, TEST_DIR, type DirEntry, type FileAttrs } from './virtual-fs.js';

/** SFTP v3 open flags. */
export const OPEN_FLAGS = { READ: 0x01, WRITE: 0x02, APPEND: 0x04, CREAT: 0x08, TRUNC: 0x10, EXCL: 0x20 } as const;

/**
 * STAT of a final name answers with the batch received under it this recently, so that
 * clients that stat after upload (WinSCP, lftp) see their file; older uploads are gone.
 */
export const STAT_AFTER_UPLOAD_WINDOW_MS = 60 * 60_000;

function kindOf(name: string): NameKind {
  return classifyUploadName(name); // throws upload.name_invalid
}

function target(ctx: SessionContext, lane: Lane, name: string): UploadTarget {
  return { partnerId: ctx.partnerId, lane, channel: 'sftp', fileName: name };
}

/** OPEN with write flags of `/inbox[/test]/<name>`. */
export async function openUpload(ctx: SessionContext, lane: Lane, name: string, pflags: number): Promise<UploadHandle> {
  if (pflags & OPEN_FLAGS.READ || !(pflags & OPEN_FLAGS.WRITE)) throw new PgwError('upload.permission_denied', 'files in /inbox can be written, not read');
  const kind = kindOf(name);
  const t = target(ctx, lane, name);
  if (kind === 'final') {
    const upload = await ctx.ingest.open(t);
    return { kind: 'upload', mode: 'final', lane, name, upload, target: t, failed: null, aborting: null, lockKey: null };
  }
  const lockKey = ctx.stagedLocks.key(ctx.partnerId, lane, name);
  if (!ctx.stagedLocks.tryLock(lockKey)) throw new PgwError('upload.incomplete', 'this temporary file is already being written');
  try {
    const exists = (await ctx.ingest.statStaged(ctx.partnerId, lane, name)) !== null;
    const resume = !(pflags & OPEN_FLAGS.TRUNC) && exists;
    const upload = await ctx.ingest.openStaged(ctx.partnerId, lane, name, resume);
    return { kind: 'upload', mode: 'staged', lane, name, upload, target: t, failed: null, aborting: null, lockKey };
  } catch (err) {
    ctx.stagedLocks.unlock(lockKey);
    throw err;
  }
}

/**
 * WRITE. Must be called synchronously from the request event (before any await) so that
 * writes are registered with the upload in arrival order, ahead of a following CLOSE.
 */
export function writeUpload(ctx: SessionContext, h: UploadHandle, offset: number, data: Buffer): Promise<void> {
  if (h.failed) return Promise.reject(h.failed);
  return h.upload.write(offset, data).catch((err: unknown) => {
    const e = isPgwError(err) ? err : new PgwError('upload.storage_failed', undefined, {}, { cause: err });
    if (!h.failed) {
      h.failed = e;
      // Nothing of a failed upload is kept: delete the temp/staged file now, not at CLOSE.
      h.aborting = abortUpload(ctx, h);
      ctx.background(h.aborting);
    }
    throw e;
  });
}

/** CLOSE: commit a final-name upload (OK only once durable), keep a staged one. */
export async function closeUpload(ctx: SessionContext, h: UploadHandle): Promise<void> {
  try {
    if (h.failed) {
      await h.aborting;
      throw h.failed;
    }
    if (h.mode === 'final') await ctx.ingest.commit(h.target, h.upload);
    else await h.upload.closeKeep();
  } catch (err) {
    if (!h.aborting) await h.upload.abort().catch(() => {});
    throw err;
  } finally {
    if (h.lockKey) ctx.stagedLocks.unlock(h.lockKey);
  }
}

/** Drop an upload (connection lost, write failed): its file is deleted. Idempotent. */
export async function abortUpload(ctx: SessionContext, h: UploadHandle): Promise<void> {
  try {
    await ctx.ingest.abort(h.upload);
  } finally {
    if (h.lockKey) ctx.stagedLocks.unlock(h.lockKey);
  }
}

export async function listInbox(ctx: SessionContext, lane: Lane): Promise<DirEntry[]> {
  const out: DirEntry[] = [];
  if (lane === 'live') out.push(entry(TEST_DIR, dirAttrs(true), ctx.partnerId));
  for (const f of await ctx.ingest.listStaged(ctx.partnerId, lane)) {
    out.push(entry(f.name, fileAttrs(f.size, f.mtime), ctx.partnerId));
  }
  return out;
}

/** STAT/LSTAT of `/inbox[/test]/<name>`. */
export async function statInboxEntry(ctx: SessionContext, lane: Lane, name: string): Promise<FileAttrs> {
  if (lane === 'live' && name === TEST_DIR) return dirAttrs(true);
  let kind: NameKind;
  try {
    kind = kindOf(name);
  } catch {
    throw noSuchFile();
  }
  if (kind === 'temp') {
    const st = await ctx.ingest.statStaged(ctx.partnerId, lane, name);
    if (!st) throw noSuchFile();
    return fileAttrs(st.size, st.mtime);
  }
  const batch = await ctx.ledger.batches.latestByFileName(ctx.partnerId, lane, name);
  if (!batch) throw noSuchFile();
  const receivedAt = new Date(batch.received_at);
  if (Date.now() - receivedAt.getTime() > STAT_AFTER_UPLOAD_WINDOW_MS) throw noSuchFile();
  return fileAttrs(batch.size, receivedAt);
}

/** REMOVE: only a staged temp file that is not being written right now. */
export async function removeInboxEntry(ctx: SessionContext, lane: Lane, name: string): Promise<void> {
  let kind: NameKind;
  try {
    kind = kindOf(name);
  } catch {
    throw new PgwError('upload.permission_denied', 'only a temporary upload can be deleted');
  }
  if (kind !== 'temp') throw new PgwError('upload.permission_denied', 'received files cannot be deleted');
  const lockKey = ctx.stagedLocks.key(ctx.partnerId, lane, name);
  if (!ctx.stagedLocks.tryLock(lockKey)) throw new PgwError('upload.incomplete', 'this temporary file is in use');
  try {
    if (!(await ctx.ingest.removeStaged(ctx.partnerId, lane, name))) throw noSuchFile();
  } finally {
    ctx.stagedLocks.unlock(lockKey);
  }
}

/**
 * RENAME `/inbox[/test]/<temp>` → the same dir's `<final>`: the commit of a staged upload.
 * OK only once the batch is durable and enqueued. Every other rename is refused.
 */
export async function renameInInbox(
  ctx: SessionContext,
  from: { lane: Lane; name: string },
  to: { lane: Lane; name: string },
): Promise<void> {
  if (from.lane !== to.lane) throw new PgwError('upload.permission_denied', 'rename within one folder only');
  let fromKind: NameKind;
  try {
    fromKind = kindOf(from.name);
  } catch {
    throw noSuchFile();
  }
  const toKind = kindOf(to.name); // upload.name_invalid for a bad target name
  if (fromKind !== 'temp' || toKind !== 'final') throw new PgwError('upload.permission_denied', 'only a temporary upload can be renamed, to a final name');
  const lockKey = ctx.stagedLocks.key(ctx.partnerId, from.lane, from.name);
  if (!ctx.stagedLocks.tryLock(lockKey)) throw new PgwError('upload.incomplete', 'this temporary file is still being written');
  try {
    // commitStaged would create (and commit) an empty file for a missing name: check first.
    if (!(await ctx.ingest.statStaged(ctx.partnerId, from.lane, from.name))) throw noSuchFile();
    await ctx.ingest.commitStaged(target(ctx, to.lane, to.name), from.name);
  } finally {
    ctx.stagedLocks.unlock(lockKey);
  }
}
