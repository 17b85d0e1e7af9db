/**
 * Encryption at rest for everything derived from a decrypted batch.
 *
 * Glossary:
 * - **data key**: 32 random bytes per batch; AES-256-GCM. Deleting its wrapped form from
 *   the ledger makes the batch's sealed files unreadable (crypto-shredding).
 * - **master key**: wraps data keys; derived from the key passphrase with scrypt and a
 *   salt kept in `<data>/keys/data-key.salt`.
 * - **sealed file**: `PGWS1` magic, an 8-byte random nonce prefix, then chunks of
 *   `[u32 length][ciphertext][16-byte tag]`. Each chunk's nonce is prefix‖counter and its
 *   AAD says whether it is the last chunk, so reordering, truncation and appended data all
 *   fail authentication.
 */
import { createCipheriv, createDecipheriv, createHmac, hkdfSync, randomBytes, scryptSync } from 'node:crypto';
import { promises as fsp, constants as fsc } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { SyncBehind } from './sync-behind.js';

const MAGIC = Buffer.from('PGWS1');
const CHUNK = 1024 * 1024;
const TAG = 16;
const AAD_MORE = Buffer.from('pgw-sealed:more');
const AAD_LAST = Buffer.from('pgw-sealed:last');

export class SealedFormatError extends Error {
  constructor(msg: string) {
    super(msg);
    this.name = 'SealedFormatError';
  }
}

/** Derive the master key once per process (scrypt is deliberately slow). */
export function deriveMasterKey(passphrase: string, salt: Buffer): Buffer {
  return scryptSync(passphrase, salt, 32, { N: 1 << 15, r: 8, p: 1, maxmem: 64 * 1024 * 1024 });
}

/** Read or create the salt next to the other key files. */
/**
 * The master key: `PGW_DATA_KEY` when configured (kept apart from the passphrase, e.g. in a
 * secrets manager), else derived from the key passphrase and the data dir's salt.
 */
export async function loadMasterKey(dataKey: string | null, passphrase: string, keysDir: string): Promise<Buffer> {
  if (dataKey) return Buffer.from(dataKey, /^[0-9a-fA-F]{64}$/.test(dataKey) ? 'hex' : 'base64');
  return deriveMasterKey(passphrase, await loadOrCreateSalt(keysDir));
}

export async function loadOrCreateSalt(keysDir: string): Promise<Buffer> {
  const file = path.join(keysDir, 'data-key.salt');
  try {
    return await fsp.readFile(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const salt = randomBytes(16);
  try {
    await fsp.writeFile(file, salt, { mode: 0o600, flag: 'wx' });
  } catch (err) {
    // Another process won the race: use its salt.
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  return fsp.readFile(file);
}

/** Bytes of one BSN block given to {@link DataKeys.subjectHashBlocks}: 9 ASCII digits, then zero bytes. */
export const SUBJECT_BLOCK_BYTES = 16;

/** Writes `bsn` (9 ASCII digits, checked by the caller) as one subject block at `offset`. */
export function writeSubjectBlock(target: Buffer, offset: number, bsn: string): void {
  target.write(bsn, offset, 9, 'latin1');
  target.fill(0, offset + 9, offset + SUBJECT_BLOCK_BYTES);
}

export class DataKeys {
  /** HMAC key of the first index version (rows written before the AES form; still searched). */
  private readonly subjectKeyV1: Buffer;
  private readonly subjectKeyV2: Buffer;

  constructor(private readonly master: Buffer) {
    // Separate keys for the subject index, so an index hash reveals nothing about data keys.
    this.subjectKeyV1 = createHmac('sha256', master).update('pgw-subject-index-v1').digest();
    this.subjectKeyV2 = createHmac('sha256', master).update('pgw-subject-index-v2').digest();
  }

  /**
   * A key for `purpose` derived from the master key (HMAC-SHA256 of a label), so that one
   * use of it reveals nothing about data keys or other uses.
   */
  derivedKey(purpose: string): Buffer {
    return createHmac('sha256', this.master).update(`pgw-${purpose}`).digest();
  }

  /**
   * The audit chain's HMAC key (ledger/audit.ts): HKDF-SHA256 of the master key under its
   * own label, never the master key itself, so the key that checks the audit log opens no
   * data key. Whoever holds only the database has neither.
   */
  auditChainKey(): Buffer {
    return Buffer.from(hkdfSync('sha256', this.master, Buffer.alloc(0), 'pgw audit chain v1', 32));
  }

  /**
   * The keyed hashes under which a person's records are indexed, one per 16-byte block of
   * `blocks` (see {@link writeSubjectBlock}), computed in one cipher call:
   * AES-256(k, block) ⊕ block, with k derived from the master key. A keyed pseudo-random
   * function like the HMAC it replaced (a leaked ledger cannot be searched for a BSN
   * without the master key), and not invertible by decryption (the block is folded in);
   * one call for a whole batch costs what ~20 HMACs did (bench/RESULTS.md §5).
   */
  subjectHashBlocks(blocks: Buffer): Buffer {
    if (blocks.length % SUBJECT_BLOCK_BYTES !== 0) throw new Error('subjectHashBlocks: whole blocks only');
    const c = createCipheriv('aes-256-ecb', this.subjectKeyV2, null);
    c.setAutoPadding(false);
    const out = c.update(blocks);
    c.final();
    for (let i = 0; i < out.length; i++) out[i]! ^= blocks[i]!;
    return out;
  }

  /** The keyed hash a BSN (9 digits) is indexed under now (see {@link subjectHashBlocks}). */
  subjectHash(bsn: string): Buffer {
    if (!/^[0-9]{9}$/.test(bsn)) throw new Error('subjectHash: a BSN is 9 digits');
    const block = Buffer.alloc(SUBJECT_BLOCK_BYTES);
    writeSubjectBlock(block, 0, bsn);
    return this.subjectHashBlocks(block);
  }

  /**
   * Every keyed hash a BSN may be indexed under: the current one, then the HMAC-SHA256 of
   * index rows written before it (a subject request must find those too).
   */
  subjectLookupHashes(bsn: string): Buffer[] {
    return [this.subjectHash(bsn), createHmac('sha256', this.subjectKeyV1).update(bsn, 'utf8').digest()];
  }

  /** A fresh data key and its wrapped (storable) form. */
  create(): { key: Buffer; wrapped: string } {
    const key = randomBytes(32);
    return { key, wrapped: this.wrap(key) };
  }

  wrap(key: Buffer): string {
    const iv = randomBytes(12);
    const c = createCipheriv('aes-256-gcm', this.master, iv);
    c.setAAD(Buffer.from('pgw-data-key'));
    const ct = Buffer.concat([c.update(key), c.final()]);
    return `v1.${Buffer.concat([iv, ct, c.getAuthTag()]).toString('base64')}`;
  }

  unwrap(wrapped: string): Buffer {
    if (!wrapped.startsWith('v1.')) throw new SealedFormatError('unknown data key format');
    const raw = Buffer.from(wrapped.slice(3), 'base64');
    const d = createDecipheriv('aes-256-gcm', this.master, raw.subarray(0, 12));
    d.setAAD(Buffer.from('pgw-data-key'));
    d.setAuthTag(raw.subarray(raw.length - TAG));
    return Buffer.concat([d.update(raw.subarray(12, raw.length - TAG)), d.final()]);
  }
}

function nonce(prefix: Buffer, counter: number): Buffer {
  const n = Buffer.alloc(12);
  prefix.copy(n, 0);
  n.writeUInt32BE(counter, 8);
  return n;
}

/**
 * Streams plaintext into a sealed file. Writes are coalesced into 1 MiB chunks, which
 * also keeps syscalls few when the producer emits many small pieces (openpgp does).
 */
export class SealedWriter {
  /** Plaintext of the chunk being filled; reused (the cipher has consumed it when a chunk is sealed). */
  private readonly staging = Buffer.allocUnsafe(CHUNK);
  private pendingBytes = 0;
  private counter = 0;
  private finished = false;
  bytesIn = 0;

  readonly syncBehind: SyncBehind;

  private constructor(private readonly fh: FileHandle, private readonly key: Buffer, private readonly prefix: Buffer) {
    this.syncBehind = new SyncBehind(fh);
  }

  static async create(file: string, key: Buffer): Promise<SealedWriter> {
    const fh = await fsp.open(file, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_TRUNC, 0o600);
    const prefix = randomBytes(8);
    await fh.write(Buffer.concat([MAGIC, prefix]));
    return new SealedWriter(fh, key, prefix);
  }

  /**
   * {@link write} of each part in turn, without joining them into one buffer first; parts
   * that fit the chunk being filled are copied without a promise each (a batch's records).
   */
  async writeParts(parts: readonly Uint8Array[]): Promise<void> {
    for (const p of parts) {
      if (!this.finished && this.pendingBytes + p.length < CHUNK) {
        this.staging.set(p, this.pendingBytes);
        this.pendingBytes += p.length;
        this.bytesIn += p.length;
      } else {
        await this.write(p);
      }
    }
  }

  async write(data: Uint8Array): Promise<void> {
    if (this.finished) throw new Error('SealedWriter: write after finish');
    this.bytesIn += data.length;
    let off = 0;
    while (off < data.length) {
      const take = Math.min(CHUNK - this.pendingBytes, data.length - off);
      // Copied into the staging chunk: the caller may reuse its buffer once this resolves.
      this.staging.set(data.subarray(off, off + take), this.pendingBytes);
      this.pendingBytes += take;
      off += take;
      if (this.pendingBytes === CHUNK) {
        this.pendingBytes = 0;
        await this.writeChunk(this.staging, false);
      }
    }
  }

  /** Seal the last chunk, fsync and close (closed also when this fails). */
  async finish(): Promise<void> {
    if (this.finished) return;
    this.finished = true;
    try {
      await this.writeChunk(this.staging.subarray(0, this.pendingBytes), true);
      this.staging.fill(0);
      await this.syncBehind.sync();
    } catch (err) {
      await this.fh.close().catch(() => {});
      throw err;
    }
    await this.fh.close();
  }

  /** Close without sealing (the caller deletes the file). */
  async abort(): Promise<void> {
    if (this.finished) return;
    this.finished = true;
    this.staging.fill(0);
    await this.syncBehind.stop();
    await this.fh.close().catch(() => {});
  }

  /** Seals `plain` (consumed before the first await, so the staging chunk may be refilled after). */
  private async writeChunk(plain: Buffer, last: boolean): Promise<void> {
    const c = createCipheriv('aes-256-gcm', this.key, nonce(this.prefix, this.counter++));
    c.setAAD(last ? AAD_LAST : AAD_MORE);
    const ct = c.update(plain);
    const tail = c.final(); // empty for GCM
    const len = Buffer.alloc(4);
    len.writeUInt32BE(ct.length + tail.length);
    await writeAllv(this.fh, [len, ct, tail, c.getAuthTag()]);
    this.syncBehind.written(ct.length + tail.length);
  }
}

/** writev until every byte is written (a short write continues where it stopped). */
async function writeAllv(fh: FileHandle, parts: Buffer[]): Promise<void> {
  let rest = parts.filter((p) => p.length > 0);
  while (rest.length > 0) {
    let { bytesWritten } = await fh.writev(rest);
    while (rest.length > 0 && bytesWritten >= rest[0]!.length) bytesWritten -= rest.shift()!.length;
    if (rest.length > 0 && bytesWritten > 0) rest[0] = rest[0]!.subarray(bytesWritten);
  }
}

/** Yields the plaintext of a sealed file chunk by chunk, authenticating each. */
export async function* readSealed(file: string, key: Buffer): AsyncGenerator<Buffer> {
  const fh = await fsp.open(file, 'r');
  try {
    const head = Buffer.alloc(MAGIC.length + 8);
    const { bytesRead } = await fh.read(head, 0, head.length, 0);
    if (bytesRead !== head.length || !head.subarray(0, MAGIC.length).equals(MAGIC)) throw new SealedFormatError('not a sealed file');
    const prefix = head.subarray(MAGIC.length);
    let pos = head.length;
    const size = (await fh.stat()).size;
    let counter = 0;
    const lenBuf = Buffer.alloc(4);
    // One ciphertext buffer for every chunk (the decipher consumes it before the yield): a
    // big batch is read twice a stage, and each fresh 1 MiB was garbage at once.
    let cipherBuf: Buffer | null = null;
    for (;;) {
      if (pos + 4 > size) throw new SealedFormatError('sealed file truncated');
      await fh.read(lenBuf, 0, 4, pos);
      const len = lenBuf.readUInt32BE();
      if (len > CHUNK || pos + 4 + len + TAG > size) throw new SealedFormatError('sealed file truncated');
      const last = pos + 4 + len + TAG === size;
      if (cipherBuf === null || cipherBuf.length < len + TAG) cipherBuf = Buffer.allocUnsafe((last ? len : CHUNK) + TAG);
      const body = cipherBuf.subarray(0, len + TAG);
      const { bytesRead: got } = await fh.read(body, 0, body.length, pos + 4);
      if (got !== body.length) throw new SealedFormatError('sealed file truncated');
      pos += 4 + len + TAG;
      const d = createDecipheriv('aes-256-gcm', key, nonce(prefix, counter++));
      d.setAAD(last ? AAD_LAST : AAD_MORE);
      d.setAuthTag(body.subarray(len));
      try {
        const plain = d.update(body.subarray(0, len));
        const tail = d.final(); // empty for GCM: no copy of the chunk
        yield tail.length ? Buffer.concat([plain, tail]) : plain;
      } catch {
        throw new SealedFormatError('sealed file failed authentication');
      }
      if (last) return;
    }
  } finally {
    await fh.close();
  }
}

export async function readSealedAll(file: string, key: Buffer): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const p of readSealed(file, key)) parts.push(p);
  return Buffer.concat(parts);
}

export async function writeSealed(file: string, key: Buffer, data: Uint8Array): Promise<void> {
  const w = await SealedWriter.create(file, key);
  try {
    await w.write(data);
    await w.finish();
  } catch (err) {
    await w.abort();
    throw err;
  }
}
