/**
 * What one SFTP session works with, and the kinds of handle it can hold.
 *
 * Glossary:
 * - **final name**: `*.pgp|*.gpg|*.asc` — an upload under it becomes a batch on CLOSE.
 * - **temp name**: `*.filepart|*.part|*.tmp` or a leading dot — staged until RENAME to a
 *   final name (WinSCP and others upload this way); never processed by itself.
 * - **staged lock**: a temp name open for writing (or being committed) is locked across
 *   the whole server so that two connections cannot write, or commit, the same file.
 */
import type { FileHandle } from 'node:fs/promises';
import type { Ledger } from '../core/ledger/index.js';
import type { Lane } from '../core/ledger/schema.js';
import type { DataDir } from '../core/data-dir.js';
import type { Logger } from '../core/logger.js';
import type { PgwError } from '../core/errors.js';
import type { ProtocolCounters } from '../core/protocol-counters.js';
import type { IngestService, UploadTarget } from '../ingest/ingest-service.js';
import type { Upload } from '../ingest/upload.js';
import type { DirEntry } from './virtual-fs.js';
import type { ReadCoverage } from './read-coverage.js';
import type { PartnerKeySubmission, SubmitPartnerKeyInput } from '../../keys/partner-key-submission.js';

/** Server-wide set of `partner/lane/name` temp files currently being written or committed. */
export class StagedLocks {
  private readonly held = new Set<string>();

  key(partnerId: string, lane: Lane, name: string): string {
    return `${partnerId}/${lane}/${name}`;
  }

  tryLock(key: string): boolean {
    if (this.held.has(key)) return false;
    this.held.add(key);
    return true;
  }

  unlock(key: string): void {
    this.held.delete(key);
  }

  isLocked(key: string): boolean {
    return this.held.has(key);
  }
}

export interface SessionContext {
  partnerId: string;
  ledger: Ledger;
  ingest: IngestService;
  dataDir: DataDir;
  gatewayPublicKeys: () => Promise<string>;
  /** The protocol-neutral self-service key service (keys/partner-key-submission.ts), bound to its deps. */
  submitPartnerKey: (input: SubmitPartnerKeyInput) => Promise<PartnerKeySubmission>;
  log: Logger;
  stagedLocks: StagedLocks;
  /** Background work (receipts, aborts) that the connection's cleanup must wait for. */
  background(p: Promise<unknown>): void;
  /** Metrics: each request refused with a code is counted by that code. */
  counters?: Pick<ProtocolCounters, 'sftpRefusal'>;
}

export interface UploadHandle {
  kind: 'upload';
  mode: 'final' | 'staged';
  lane: Lane;
  name: string;
  upload: Upload;
  target: UploadTarget;
  /** Set when a write failed (size limit, disk): the upload is aborted, CLOSE reports it. */
  failed: PgwError | null;
  aborting: Promise<void> | null;
  /** Staged uploads hold the server-wide lock on their temp name until CLOSE. */
  lockKey: string | null;
}

export interface OutboxFileHandle {
  kind: 'outbox-file';
  lane: Lane;
  name: string;
  fh: FileHandle;
  size: number;
  mtime: Date;
  coverage: ReadCoverage;
  /** The delivery receipt, once started (at most once per handle). */
  receipt: Promise<void> | null;
}

export interface MemoryFileHandle {
  kind: 'memory';
  data: Buffer;
  mtime: Date;
}

/** A write to /keys/incoming: small, held in memory, stored on CLOSE. */
export interface KeyUploadHandle {
  kind: 'key-upload';
  name: string;
  data: Buffer;
  /** Set when a write went past the size limit: CLOSE reports it. */
  failed: PgwError | null;
}

export interface DirHandle {
  kind: 'dir';
  /** Computed at OPENDIR; READDIR hands it out in chunks, then EOF. */
  entries: DirEntry[];
  pos: number;
}

export type OpenHandle = UploadHandle | OutboxFileHandle | MemoryFileHandle | KeyUploadHandle | DirHandle;
