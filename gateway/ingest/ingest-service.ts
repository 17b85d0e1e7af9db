/**
 * The protocol-neutral upload lifecycle shared by SFTP and HTTPS:
 * limits → temp file → hash → fsync → rename into the spool → fsync(dir) → ledger row →
 * enqueue. Only when this returns may a channel report success. A crash before the ledger
 * row leaves at most an orphan spool file (swept later) and no success reply; after it,
 * the reconciler finishes the work even if the enqueue never happened.
 */
import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import type { Batch, Ledger } from '../core/ledger/index.js';
import type { Lane, Channel } from '../core/ledger/schema.js';
import type { DataDir } from '../core/data-dir.js';
import type { DataKeys } from '../core/sealed-blob.js';
import type { Enqueuer } from '../core/pipeline.js';
import type { Logger } from '../core/logger.js';
import type { FaultHook } from '../core/faults.js';
import { commitRename, removeQuietly } from '../core/fs-atomic.js';
import { PgwError } from '../core/errors.js';
import { classifyUploadName } from '../core/file-names.js';
import { DirSync } from './dir-sync.js';
import { Upload } from './upload.js';

export interface UploadTarget {
  partnerId: string;
  lane: Lane;
  channel: Channel;
  fileName: string;
  /** Same name and bytes again = a retry answered with the first batch (HTTPS PUT semantics). */
  sameNameIsRetry?: boolean;
  /** Ids of the channel's own (request id, connection) for this upload's log lines. */
  logContext?: Record<string, string>;
}

export interface IngestResult {
  batchId: string;
  sha256: string;
  size: number;
  receivedAt: Date;
  /** Set when the same bytes were already received from this partner (in this lane). */
  duplicateOf: string | null;
  /** False when the queue was unreachable; the reconciler will enqueue it. */
  enqueued: boolean;
  /** True when this was a retry of an upload already received: `batchId` is the first batch's. */
  retried: boolean;
}

export interface IngestDeps {
  ledger: Ledger;
  dataDir: DataDir;
  enqueuer: Enqueuer;
  dataKeys: DataKeys;
  limits: { uploadBytes: number };
  log: Logger;
  fault: FaultHook;
}

export interface StagedFile {
  name: string;
  size: number;
  mtime: Date;
}

/** `b-YYYYMMDD-` + 12 random base32 characters: sortable, unguessable, safe as a job id. */
export function newBatchId(now = new Date()): string {
  const alphabet = 'abcdefghijkmnpqrstuvwxyz23456789';
  const rnd = randomBytes(12);
  let s = '';
  for (const b of rnd) s += alphabet[b % 32];
  return `b-${now.toISOString().slice(0, 10).replace(/-/g, '')}-${s}`;
}

export class IngestService {
  private readonly spoolSync: DirSync;

  constructor(private readonly d: IngestDeps) {
    this.spoolSync = new DirSync(d.dataDir.spoolDir);
  }

  /** Start an upload under a final name: bytes go to a private temp file. */
  async open(target: UploadTarget): Promise<Upload> {
    if (classifyUploadName(target.fileName) !== 'final') throw new PgwError('upload.name_invalid');
    await this.requireActive(target.partnerId);
    const tmp = path.join(this.d.dataDir.tmpDir, `${target.partnerId}-${randomBytes(12).toString('hex')}.part`);
    return Upload.open(tmp, this.d.limits.uploadBytes);
  }

  /** Make a finished upload durable and start its processing. */
  async commit(target: UploadTarget, upload: Upload): Promise<IngestResult> {
    let sealed: { sha256: string; size: number };
    try {
      this.d.fault('after-temp-write');
      sealed = await upload.seal();
      this.d.fault('after-fsync');
    } catch (err) {
      await upload.abort();
      throw err instanceof PgwError ? err : new PgwError('upload.storage_failed', undefined, {}, { cause: err });
    }
    return this.ingestSealedFile(target, upload.path, 'tmp', sealed);
  }

  async abort(upload: Upload): Promise<void> {
    await upload.abort();
  }

  // --- temp-named uploads (WinSCP `.filepart` and friends) ---

  /** Open a temp-named upload in the partner's staging area (resume keeps existing bytes). */
  async openStaged(partnerId: string, lane: Lane, tempName: string, resume: boolean): Promise<Upload> {
    if (classifyUploadName(tempName) !== 'temp') throw new PgwError('upload.name_invalid');
    await this.requireActive(partnerId);
    const dir = this.d.dataDir.stagingDir(partnerId, lane);
    await fsp.mkdir(dir, { recursive: true, mode: 0o700 });
    const file = path.join(dir, tempName);
    if (!resume) await removeQuietly(file);
    return Upload.open(file, this.d.limits.uploadBytes, resume);
  }

  /** The rename from a temp name to a final name: the commit of a staged upload. */
  async commitStaged(target: UploadTarget, tempName: string): Promise<IngestResult> {
    if (classifyUploadName(tempName) !== 'temp' || classifyUploadName(target.fileName) !== 'final') {
      throw new PgwError('upload.name_invalid');
    }
    await this.requireActive(target.partnerId);
    const file = path.join(this.d.dataDir.stagingDir(target.partnerId, target.lane), tempName);
    const st = await fsp.lstat(file).catch(() => null);
    if (!st?.isFile()) throw new PgwError('upload.incomplete');
    const up = await Upload.open(file, this.d.limits.uploadBytes, true).catch(() => {
      throw new PgwError('upload.incomplete');
    });
    const sealed = await up.seal();
    return this.ingestSealedFile(target, file, 'staging', sealed);
  }

  async listStaged(partnerId: string, lane: Lane): Promise<StagedFile[]> {
    const dir = this.d.dataDir.stagingDir(partnerId, lane);
    const names = await fsp.readdir(dir).catch(() => [] as string[]);
    const out: StagedFile[] = [];
    for (const name of names) {
      const st = await fsp.stat(path.join(dir, name)).catch(() => null);
      if (st?.isFile()) out.push({ name, size: st.size, mtime: st.mtime });
    }
    return out;
  }

  async statStaged(partnerId: string, lane: Lane, name: string): Promise<StagedFile | null> {
    if (classifyUploadName(name) !== 'temp') return null;
    const st = await fsp.stat(path.join(this.d.dataDir.stagingDir(partnerId, lane), name)).catch(() => null);
    return st?.isFile() ? { name, size: st.size, mtime: st.mtime } : null;
  }

  async removeStaged(partnerId: string, lane: Lane, name: string): Promise<boolean> {
    if (classifyUploadName(name) !== 'temp') return false;
    const file = path.join(this.d.dataDir.stagingDir(partnerId, lane), name);
    try {
      await fsp.unlink(file);
      return true;
    } catch {
      return false;
    }
  }

  /**
   * Rename into the spool and fsync the spool directory (shared with concurrent uploads).
   * A staged file's directory is fsynced too: a staged name that came back after a crash
   * could be renamed again by the partner. The private temp directory is not: a `.part`
   * name that came back would be a second link to a spool file, and the reconciler sweeps
   * stale temp files.
   */
  private async renameIntoSpool(file: string, spool: string, from: 'tmp' | 'staging'): Promise<void> {
    if (from === 'staging') return commitRename(file, spool);
    await fsp.rename(file, spool);
    await this.spoolSync.sync();
  }

  /** A partner disabled while connected must not go on uploading. */
  private async requireActive(partnerId: string): Promise<void> {
    if ((await this.d.ledger.partners.get(partnerId))?.status !== 'active') throw new PgwError('partner.disabled');
  }

  private async ingestSealedFile(target: UploadTarget, file: string, from: 'tmp' | 'staging', sealed: { sha256: string; size: number }): Promise<IngestResult> {
    const receivedAt = new Date();
    const batchId = newBatchId(receivedAt);
    const spool = this.d.dataDir.spoolFile(batchId);
    try {
      await this.renameIntoSpool(file, spool, from);
    } catch (err) {
      await removeQuietly(file);
      await removeQuietly(spool); // renamed, but its directory fsync failed
      throw new PgwError('upload.storage_failed', undefined, {}, { cause: err });
    }
    this.d.fault('after-rename');
    const { wrapped } = this.d.dataKeys.create();
    let duplicateOf: string | null;
    let retryOf: string | null;
    let first: Batch;
    try {
      ({ duplicateOf, retryOf, batch: first } = await this.d.ledger.batches.insertReceived({
        id: batchId, partnerId: target.partnerId, channel: target.channel, lane: target.lane,
        fileName: target.fileName, sha256: sealed.sha256, size: sealed.size, receivedAt, dataKey: wrapped,
        sameNameIsRetry: target.sameNameIsRetry ?? false,
      }));
    } catch (err) {
      // Not durable in the ledger: the client must not get success; drop the spool copy.
      await removeQuietly(spool);
      throw new PgwError('upload.storage_failed', undefined, {}, { cause: err });
    }
    if (retryOf) {
      // The first upload holds these bytes already; this copy is not needed.
      await removeQuietly(spool);
      this.d.log.info('upload retried', { ...target.logContext, partner: target.partnerId, batch: retryOf, channel: target.channel, sha256: sealed.sha256 });
      return {
        batchId: retryOf, sha256: sealed.sha256, size: sealed.size, receivedAt: new Date(first.received_at), duplicateOf: first.duplicate_of,
        enqueued: true, retried: true,
      };
    }
    this.d.fault('after-ledger');
    const log = this.d.log.child({ ...target.logContext, partner: target.partnerId, batch: batchId });
    log.info('upload received', {
      channel: target.channel, lane: target.lane, size: sealed.size, sha256: sealed.sha256, duplicateOf,
    });
    this.d.fault('before-enqueue');
    let enqueued = true;
    try {
      await this.d.enqueuer.enqueue(duplicateOf ? 'ack' : 'decrypt', batchId);
    } catch (err) {
      // The ledger row is the record; the reconciler enqueues it once the queue is back.
      enqueued = false;
      log.warn('enqueue failed; reconciler will retry', { err });
    }
    return { batchId, sha256: sealed.sha256, size: sealed.size, receivedAt, duplicateOf, enqueued, retried: false };
  }
}
