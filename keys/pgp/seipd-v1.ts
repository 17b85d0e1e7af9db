/**
 * The symmetric layer of SEIPD v1 with AES — what GnuPG and most partner tools send —
 * decrypted here instead of inside openpgp.js; everything else (session keys, the packets
 * inside, signatures) stays openpgp's.
 *
 * Why: openpgp decrypts SEIPD v1 with OpenSSL's CFB, which runs one block after another
 * (~470 MB/s on the benchmark machine), and hashes the MDC through two more web streams.
 * CFB decryption needs no chaining: keystream block i is AES(ciphertext block i−1), so a
 * whole chunk's keystream is one ECB call over the ciphertext shifted by a block (OpenSSL
 * pipelines that, ~1.3 GB/s here), XORed in place.
 *
 * What openpgp checks, we check (RFC 9580 §5.13.1): CFB with a zero IV, a random prefix of
 * block size + 2 octets, the Modification Detection Code packet (0xD3 0x14, then SHA-1 of
 * everything before it) as the last 22 octets, compared in constant time. Like openpgp we
 * ignore the prefix's quick-check octets (an oracle, RFC 9580 §13.4); unlike openpgp we also
 * require the MDC packet's two header octets, as GnuPG does. Inside, only the packets
 * openpgp allows there may appear (the inner stream goes to openpgp.readMessage, which
 * would allow encryption packets too).
 */
import { createCipheriv, createHash, timingSafeEqual, type Cipher, type Hash } from 'node:crypto';
import { PgwError } from '../../gateway/core/errors.js';
import { PacketAllowList } from './packet-header.js';
import { InnerInflate } from './inner-inflate.js';

const BLOCK = 16;
/** The MDC packet: tag 19 (new format, 0xD3), length 20 (0x14), SHA-1. */
const MDC_LENGTH = 22;
const AES_ECB: Record<string, { name: string; keySize: number }> = {
  aes128: { name: 'aes-128-ecb', keySize: 16 },
  aes192: { name: 'aes-192-ecb', keySize: 24 },
  aes256: { name: 'aes-256-ecb', keySize: 32 },
};
/** Literal, compressed, one-pass signature, signature: openpgp's allowed set inside SEIPD. */
const INNER_TAGS: ReadonlySet<number> = new Set([11, 8, 4, 2]);

/** Whether this session key is one the fast path takes (AES of the right size). */
export function fastPathTakes(sessionKey: { algorithm: string | null; data: Uint8Array }): boolean {
  const c = sessionKey.algorithm ? AES_ECB[sessionKey.algorithm] : undefined;
  return c !== undefined && c.keySize === sessionKey.data.length;
}

/** AES-CFB decryption as SEIPD v1 uses it (zero IV, full-block feedback). */
export class CfbDecipher {
  private readonly ecb: Cipher;
  /** The previous ciphertext block (the IV at first). */
  private readonly prev = Buffer.alloc(BLOCK);
  /** Ciphertext octets short of a whole block. */
  private carry = Buffer.alloc(0);
  /** prev ‖ whole blocks of ciphertext, reused between chunks. */
  private work = Buffer.alloc(0);

  constructor(algorithm: string, key: Uint8Array) {
    const c = AES_ECB[algorithm];
    if (!c || c.keySize !== key.length) throw new Error(`no fast CFB for ${algorithm} with a ${key.length}-octet key`);
    this.ecb = createCipheriv(c.name, key, null).setAutoPadding(false);
  }

  update(chunk: Uint8Array): Buffer {
    const total = this.carry.length + chunk.length;
    const n = total - (total % BLOCK);
    if (n === 0) {
      this.carry = Buffer.concat([this.carry, chunk]);
      return Buffer.alloc(0);
    }
    if (this.work.length < n + BLOCK) this.work = Buffer.allocUnsafeSlow(n + BLOCK);
    const work = this.work;
    const fromChunk = n - this.carry.length;
    work.set(this.prev, 0);
    work.set(this.carry, BLOCK);
    work.set(chunk.subarray(0, fromChunk), BLOCK + this.carry.length);
    const out = this.ecb.update(work.subarray(0, n));
    xorInto(out, work, BLOCK, n);
    this.prev.set(work.subarray(n, n + BLOCK));
    this.carry = Buffer.from(chunk.subarray(fromChunk));
    return out;
  }

  /** The last, partial block. */
  final(): Buffer {
    if (this.carry.length === 0) return Buffer.alloc(0);
    const ks = this.ecb.update(this.prev);
    const out = Buffer.from(this.carry);
    xorInto(out, ks, 0, out.length);
    this.carry = Buffer.alloc(0);
    return out;
  }
}

/** out[i] ^= src[from + i] for i < n; eight octets at a time when both are aligned (V8 runs BigInt64 XOR ~2× faster than Int32). */
function xorInto(out: Buffer, src: Buffer, from: number, n: number): void {
  let i = 0;
  if (out.byteOffset % 8 === 0 && (src.byteOffset + from) % 8 === 0) {
    const len = n >> 3;
    const a = new BigInt64Array(out.buffer, out.byteOffset, len);
    const b = new BigInt64Array(src.buffer, src.byteOffset + from, len);
    for (let k = 0; k < len; k++) a[k] = a[k]! ^ b[k]!;
    i = len << 3;
  }
  for (; i < n; i++) out[i] = out[i]! ^ src[from + i]!;
}

/** The plaintext of a SEIPD v1 body: the inner packets, with the prefix and MDC checked off. */
export class Seipd1Decoder {
  private readonly cfb: CfbDecipher;
  private readonly sha1: Hash = createHash('sha1');
  /** Plaintext octets released so far (the prefix counts). */
  private released = 0;
  /** The last MDC_LENGTH octets seen: the MDC packet once the input ends. */
  private tail = Buffer.alloc(0);

  constructor(algorithm: string, key: Uint8Array) {
    this.cfb = new CfbDecipher(algorithm, key);
  }

  /** Inner packet octets of this ciphertext chunk, in order (may be none). */
  update(ciphertext: Uint8Array, out: Buffer[]): void {
    this.take(this.cfb.update(ciphertext), out);
  }

  /** The rest, once the MDC has checked out; a failed check throws `pgp.integrity`. */
  final(out: Buffer[]): void {
    this.take(this.cfb.final(), out);
    const t = this.tail;
    let ok = t.length === MDC_LENGTH && this.released >= BLOCK + 2 && t[0] === 0xd3 && t[1] === 0x14;
    this.sha1.update(t.subarray(0, 2));
    const digest = this.sha1.digest();
    if (ok) ok = timingSafeEqual(digest, t.subarray(2));
    if (!ok) throw new PgwError('pgp.integrity', 'the encrypted data failed its integrity check (modification detected)');
  }

  /** Hold back the last MDC_LENGTH octets; hash and release the rest, less the prefix. */
  private take(p: Buffer, out: Buffer[]): void {
    if (p.length === 0) return;
    if (this.tail.length + p.length <= MDC_LENGTH) {
      this.tail = Buffer.concat([this.tail, p]);
      return;
    }
    const go = this.tail.length + p.length - MDC_LENGTH;
    const fromTail = Math.min(go, this.tail.length);
    if (fromTail > 0) this.release(this.tail.subarray(0, fromTail), out);
    this.release(p.subarray(0, go - fromTail), out);
    this.tail = p.length >= MDC_LENGTH
      ? Buffer.from(p.subarray(p.length - MDC_LENGTH))
      : Buffer.concat([this.tail.subarray(fromTail), p]);
  }

  private release(b: Buffer, out: Buffer[]): void {
    if (b.length === 0) return;
    this.sha1.update(b);
    const skip = Math.max(0, Math.min(b.length, BLOCK + 2 - this.released));
    this.released += b.length;
    if (skip < b.length) out.push(b.subarray(skip));
  }
}

/**
 * The inner packet stream of a SEIPD v1 body, for openpgp.readMessage. It closes only after
 * the MDC has checked out (so openpgp sees the end of its input only then), and errors
 * with a PgwError — also kept in `failure`, because openpgp rewraps what its input throws.
 *
 * As in openpgp, a failed MDC takes precedence over what the garbage it decrypts to looks
 * like: on a packet not allowed inside, and when the reader gives up early (openpgp cancels
 * on a parse error; the stage calls `settle()` on any failure), the rest of the ciphertext
 * is decrypted and dropped to reach the MDC first.
 */
export class Seipd1Stream {
  failure: PgwError | null = null;
  readonly plaintext: ReadableStream<Uint8Array>;
  private readonly decoder: Seipd1Decoder;
  private readonly reader: ReadableStreamDefaultReader<Uint8Array>;
  private readonly inflate: InnerInflate;
  /** The ciphertext has been read to its end (or failed): nothing is left to settle. */
  private done = false;
  /** The pull or settle in progress: they must not read the ciphertext at once. */
  private busy: Promise<void> = Promise.resolve();

  /**
   * `maxInflated`: openpgp's maxDecompressedMessageSize, for a compressed packet inflated
   * here (inner-inflate.ts).
   */
  constructor(encrypted: ReadableStream<Uint8Array>, sessionKey: { algorithm: string | null; data: Uint8Array }, maxInflated: number) {
    this.decoder = new Seipd1Decoder(sessionKey.algorithm ?? '', sessionKey.data);
    this.reader = encrypted.getReader();
    const inflate = new InnerInflate(maxInflated);
    this.inflate = inflate;
    const inner = new PacketAllowList(INNER_TAGS);
    this.plaintext = new ReadableStream<Uint8Array>({
      pull: (c) => this.exclusive(async () => {
        // A pull must enqueue something or close: a chunk may hold only prefix octets.
        for (;;) {
          const out: Buffer[] = [];
          let verdict: PgwError | null = null;
          let ended = false;
          try {
            if (inflate.hungry && !this.done) {
              const plain = await this.step();
              if (this.failure) {
                c.error(this.failure);
                return;
              }
              for (const b of plain) inner.feed(b);
              if (inner.misplaced !== null) {
                throw new PgwError('pgp.malformed', `the encrypted data holds a packet not allowed there (tag ${inner.misplaced})`);
              }
              for (const b of plain) inflate.push(b, out);
            }
            if (this.done) inflate.endInput(out);
            // While openpgp reads this output, zlib inflates on the thread pool.
            await inflate.pump(out);
            ended = this.done && inflate.done;
          } catch (err) {
            if (!(err instanceof PgwError)) throw err;
            verdict = err;
          }
          if (verdict) {
            inflate.dispose();
            await this.drain(); // the MDC's verdict first
            this.failure ??= verdict;
            c.error(this.failure);
            return;
          }
          for (const b of out) c.enqueue(b);
          if (ended) {
            c.close();
            return;
          }
          if (out.length) return;
        }
      }),
      cancel: () => this.settle(),
    }, { highWaterMark: 0 });
  }

  /** Decrypt the rest (dropping it) to learn the MDC's verdict, unless already known. */
  settle(): Promise<void> {
    return this.exclusive(() => {
      this.inflate.dispose();
      return this.drain();
    });
  }

  private async drain(): Promise<void> {
    while (!this.done) await this.step();
  }

  /** One ciphertext chunk through the decoder; the end runs the MDC check. */
  private async step(): Promise<Buffer[]> {
    const out: Buffer[] = [];
    try {
      const r = await this.reader.read();
      if (r.done) {
        this.done = true;
        this.decoder.final(out);
      } else {
        this.decoder.update(r.value, out);
      }
    } catch (err) {
      this.done = true;
      if (err instanceof PgwError) this.failure ??= err;
      else throw err;
    }
    return out;
  }

  private exclusive(fn: () => Promise<void>): Promise<void> {
    const run = this.busy.then(fn);
    this.busy = run.catch(() => {});
    return run;
  }
}
