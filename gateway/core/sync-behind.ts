/**
 * Flushing a file being written to disk behind its writes, so the fsync that makes it
 * durable at the end waits for the last stretch only. Both a partner's upload and the
 * decrypt stage's sealed plaintext end in an fsync, and on this kind of machine writes land
 * in the page cache at GB/s while the disk takes ~0.5 GB/s: with one fsync at the end, a
 * 512 MiB upload waited ~0.65 s for the disk after its last write (a third of its transfer
 * time) and the decrypt stage of a 64 MiB batch ~80 ms of its ~450 (bench/RESULTS.md §1, §2).
 */
import type { FileHandle } from 'node:fs/promises';

/** Written bytes after which a background flush starts (when none is running for the file). */
export const SYNC_BEHIND_BYTES = 16 * 1024 * 1024;

/**
 * Background flushes running in the process at once: each holds one of libuv's thread-pool
 * threads (4 by default), which every file write and async crypto call also needs. A flush
 * skipped only leaves more for the final fsync.
 */
const MAX_RUNNING = 2;
let running = 0;

export class SyncBehind {
  private unsynced = 0;
  private flush: Promise<void> | null = null;
  /** A background flush failed: the bytes may not be on disk, and a later fsync may not say so (Linux reports a writeback error once). */
  private error: unknown = null;
  private stopped = false;
  /** Background flushes started (tests, diagnostics). */
  started = 0;

  constructor(private readonly fh: FileHandle) {}

  /** `bytes` more were written (their write has completed). */
  written(bytes: number): void {
    this.unsynced += bytes;
    if (this.unsynced < SYNC_BEHIND_BYTES || this.flush || this.stopped || running >= MAX_RUNNING) return;
    this.unsynced = 0;
    this.started += 1;
    running += 1;
    this.flush = this.fh.datasync().catch((err: unknown) => {
      this.error ??= err;
    }).finally(() => {
      running -= 1;
      this.flush = null;
    });
  }

  /** The final fsync: after the running flush, and failing with what any flush met (the fsync alone may not report it). */
  async sync(): Promise<void> {
    await this.stop();
    if (this.error !== null) throw this.error;
    await this.fh.sync();
  }

  /** No more flushes; wait for the running one (before the handle is closed). */
  async stop(): Promise<void> {
    this.stopped = true;
    await this.flush;
  }
}
