/**
 * One upload in progress: positional writes into a temp file, sha-256 computed on the fly
 * while writes arrive in order (OpenSSH pipelines them in order), size limits enforced on
 * every write. Out-of-order writes are allowed; the hash is then recomputed from the file
 * once, at commit.
 *
 * A big upload is flushed to disk behind its writes ({@link SyncBehind}), so CLOSE's fsync
 * waits for the last stretch only.
 */
import { createHash, type Hash } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { PgwError } from '../core/errors.js';
import { hashFile } from '../core/file-hash.js';
import { removeQuietly } from '../core/fs-atomic.js';
import { SyncBehind } from '../core/sync-behind.js';

export class Upload {
  private hash: Hash | null = createHash('sha256');
  private hashedUpTo = 0;
  private end = 0;
  private closed = false;
  private readonly inFlight = new Set<Promise<void>>();
  private failed: PgwError | null = null;
  readonly syncBehind: SyncBehind;

  private constructor(
    readonly path: string,
    private readonly fh: FileHandle,
    private readonly maxBytes: number,
    initialSize: number,
  ) {
    this.end = initialSize;
    if (initialSize > 0) this.hash = null; // resumed: hash from the file at commit
    this.syncBehind = new SyncBehind(fh);
  }

  /** Open (create, or continue an existing staged file when `resume`). */
  static async open(file: string, maxBytes: number, resume = false): Promise<Upload> {
    const fh = await fsp.open(file, resume ? 'r+' : 'wx', 0o600).catch(async (err: NodeJS.ErrnoException) => {
      if (resume && err.code === 'ENOENT') return fsp.open(file, 'wx', 0o600);
      throw err;
    });
    const size = resume ? (await fh.stat()).size : 0;
    return new Upload(file, fh, maxBytes, size);
  }

  get size(): number {
    return this.end;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Write `data` at `offset`. Throws `limits.upload_size` / `limits.sparse_write`. */
  async write(offset: number, data: Uint8Array): Promise<void> {
    if (this.closed) throw new PgwError('upload.incomplete');
    if (this.failed) throw this.failed;
    if (!Number.isSafeInteger(offset) || offset < 0 || offset > this.maxBytes) {
      throw this.fail(new PgwError('limits.sparse_write', undefined, { limit: this.maxBytes }));
    }
    if (offset + data.length > this.maxBytes) {
      throw this.fail(new PgwError('limits.upload_size', undefined, { limit: this.maxBytes }));
    }
    if (this.hash) {
      if (offset === this.hashedUpTo) {
        this.hash.update(data);
        this.hashedUpTo += data.length;
      } else {
        this.hash = null; // out of order or an overwrite: recompute from the file at the end
      }
    }
    this.end = Math.max(this.end, offset + data.length);
    const p = this.writeAll(offset, data);
    this.inFlight.add(p);
    try {
      await p;
    } catch (err) {
      // The hash and `end` already count these bytes: this upload can no longer be sealed.
      this.failed ??= new PgwError('upload.storage_failed', undefined, {}, { cause: err });
      throw err;
    } finally {
      this.inFlight.delete(p);
    }
    this.syncBehind.written(data.length);
  }

  private async writeAll(offset: number, data: Uint8Array): Promise<void> {
    let done = 0;
    while (done < data.length) {
      const { bytesWritten } = await this.fh.write(data, done, data.length - done, offset + done);
      done += bytesWritten;
    }
  }

  /** A client may send CLOSE while writes are still in flight: let them land first. */
  private async drain(): Promise<void> {
    await Promise.allSettled([...this.inFlight]);
  }

  /** Flush to disk, close, and return the digest and size of exactly what is on disk. */
  async seal(): Promise<{ sha256: string; size: number }> {
    if (this.closed) throw new PgwError('upload.incomplete');
    if (this.failed) throw this.failed;
    const size = await this.finish();
    if (this.hash && this.hashedUpTo === size) return { sha256: this.hash.digest('hex'), size };
    return { sha256: await hashFile(this.path), size };
  }

  /** Close and delete: nothing of an incomplete upload is kept. */
  async abort(): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      await this.drain();
      await this.syncBehind.stop();
      await this.fh.close().catch(() => {});
    }
    await removeQuietly(this.path);
  }

  /** Close but keep the file (a staged temp-name upload waiting for its rename). */
  async closeKeep(): Promise<void> {
    if (this.closed) return;
    await this.finish();
  }

  /**
   * Let writes and flushes land, fsync, close; the size on disk. The handle is closed also
   * when this fails (abort() then only deletes the file).
   */
  private async finish(): Promise<number> {
    this.closed = true;
    let size: number;
    try {
      await this.drain();
      await this.syncBehind.sync();
      // Contiguous writes from 0 that all succeeded: the file is exactly `end` bytes long
      // (one thread-pool round trip less per small file). Anything else asks the file.
      size = this.hash && this.hashedUpTo === this.end ? this.end : (await this.fh.stat()).size;
    } catch (err) {
      await this.fh.close().catch(() => {});
      throw err;
    }
    await this.fh.close();
    return size;
  }

  private fail(err: PgwError): PgwError {
    this.failed = err;
    return err;
  }
}
