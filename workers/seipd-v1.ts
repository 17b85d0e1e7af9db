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
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { PgwError, type ErrorCode } from '../gateway/core/errors.js';
import type { ThreadReply, ThreadRequest } from './seipd-thread.js';
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

/**
 * Messages from this size on are decrypted on a worker thread: starting one costs a few
 * milliseconds (more when run from the sources), which a 100-record batch should not pay.
 */
export const SEIPD_THREAD_MIN_BYTES = 4 * 1024 * 1024;

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
    for (let i = 0; i < out.length; i++) out[i]! ^= ks[i]!;
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

/** Where a message's Seipd1Decoder runs: here, or on a worker thread. Results come back in order. */
interface DecoderEngine {
  update(chunk: Uint8Array): Promise<Buffer[]>;
  final(): Promise<Buffer[]>;
  close(): void;
}

/** The decoder on this thread (small messages: a thread costs more than it saves). */
class LocalEngine implements DecoderEngine {
  private readonly decoder: Seipd1Decoder;
  constructor(algorithm: string, key: Uint8Array) {
    this.decoder = new Seipd1Decoder(algorithm, key);
  }
  async update(chunk: Uint8Array): Promise<Buffer[]> {
    const out: Buffer[] = [];
    this.decoder.update(chunk, out);
    return out;
  }
  async final(): Promise<Buffer[]> {
    const out: Buffer[] = [];
    this.decoder.final(out);
    return out;
  }
  close(): void {}
}

const THREAD_URL = new URL(`./seipd-thread${path.extname(fileURLToPath(import.meta.url))}`, import.meta.url);

/** tsx's ESM API module, as its package exports it (module code may run as CommonJS under a test runner). */
function tsxEsmApi(): string {
  const pkgFile = createRequire(import.meta.url).resolve('tsx/package.json');
  const pkg = JSON.parse(readFileSync(pkgFile, 'utf8')) as { exports: Record<string, { import: { default: string } }> };
  return pathToFileURL(path.join(path.dirname(pkgFile), pkg.exports['./esm/api']!.import.default)).href;
}

/**
 * Run from the sources, the thread registers tsx before loading its module, as bin/pgw.js
 * does (Node 20 does not apply loader hooks from a worker's execArgv to its entry module).
 */
function startThread(): Worker {
  const w = THREAD_URL.pathname.endsWith('.ts')
    ? new Worker(`import(${JSON.stringify(tsxEsmApi())}).then((m) => { m.register(); return import(${JSON.stringify(THREAD_URL.href)}); })`, { eval: true })
    : new Worker(THREAD_URL);
  w.unref(); // never what keeps a process alive
  return w;
}

/**
 * Decoder threads kept between messages: starting one costs ~30 ms (more from the
 * sources), so a worker process starts one with its pool (WorkerPool) and a message takes
 * an idle one. A thread goes back only after a clean end (no reply outstanding).
 */
class SeipdThreads {
  private idle: Worker[] = [];

  /** Have an idle thread; resolves once it has loaded its module. */
  warm(): Promise<void> {
    if (this.idle.length > 0) return Promise.resolve();
    const w = startThread();
    this.idle.push(w);
    return new Promise<void>((resolve) => {
      const onReady = (m: ThreadReply) => {
        if (!('ready' in m)) return;
        w.off('message', onReady);
        resolve();
      };
      w.on('message', onReady);
      w.once('exit', () => resolve());
    });
  }

  take(): Worker {
    return this.idle.pop() ?? startThread();
  }

  give(w: Worker): void {
    if (this.idle.length < MAX_IDLE_THREADS) this.idle.push(w);
    else void w.terminate();
  }

  async close(): Promise<void> {
    await Promise.all(this.idle.splice(0).map((w) => w.terminate()));
  }
}
const MAX_IDLE_THREADS = 2;
export const seipdThreads = new SeipdThreads();

/** The decoder on a worker thread (seipd-thread.ts). */
class ThreadEngine implements DecoderEngine {
  private readonly worker = seipdThreads.take();
  private readonly waiting: { resolve(out: Buffer[]): void; reject(err: unknown): void }[] = [];
  private dead: unknown = null;
  /** The end's reply came, nothing is outstanding: the thread may serve another message. */
  private clean = false;
  private closed = false;
  private readonly onMessage = (m: ThreadReply) => {
    if ('ready' in m) return;
    const w = this.waiting.shift();
    if (!w) return;
    if ('out' in m) w.resolve(m.out.map((u) => Buffer.from(u.buffer, u.byteOffset, u.byteLength)));
    else if ('failure' in m) w.reject(new PgwError(m.failure.code as ErrorCode, m.failure.message));
    else w.reject(new Error(`SEIPD thread: ${m.crash}`));
  };
  private readonly onFail = (err: unknown) => {
    this.dead ??= err;
    for (const w of this.waiting.splice(0)) w.reject(err);
  };
  private readonly onExit = (code: number) => this.onFail(new Error(`SEIPD thread exited (${code})`));

  constructor(algorithm: string, key: Uint8Array) {
    this.worker.on('message', this.onMessage);
    this.worker.on('error', this.onFail);
    this.worker.on('exit', this.onExit);
    this.worker.postMessage({ start: { algorithm, key } } satisfies ThreadRequest);
  }

  update(chunk: Uint8Array): Promise<Buffer[]> {
    // The caller's view may share its buffer (Buffer#slice would be a view too, and a pooled
    // Buffer.from copy would take Node's shared pool along): move a fresh copy.
    const copy = new Uint8Array(chunk);
    return this.call({ chunk: copy }, [copy.buffer]);
  }

  async final(): Promise<Buffer[]> {
    const out = await this.call({ end: true }, []);
    this.clean = this.waiting.length === 0;
    return out;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.worker.off('message', this.onMessage);
    this.worker.off('error', this.onFail);
    this.worker.off('exit', this.onExit);
    if (this.clean && !this.dead) seipdThreads.give(this.worker);
    else void this.worker.terminate();
  }

  private call(m: ThreadRequest, transfer: ArrayBuffer[]): Promise<Buffer[]> {
    if (this.dead) return Promise.reject(this.dead);
    const p = new Promise<Buffer[]>((resolve, reject) => this.waiting.push({ resolve, reject }));
    this.worker.postMessage(m, transfer);
    return p;
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
  private readonly engine: DecoderEngine;
  private readonly reader: ReadableStreamDefaultReader<Uint8Array>;
  /** Ciphertext chunks handed to the engine, their plaintext not yet taken (oldest first). */
  private readonly ahead: Promise<Buffer[]>[] = [];
  private inputDone = false;
  private readonly inflate: InnerInflate;
  /** The ciphertext has been read to its end (or failed): nothing is left to settle. */
  private done = false;
  /** The pull or settle in progress: they must not read the ciphertext at once. */
  private busy: Promise<void> = Promise.resolve();

  /**
   * `maxInflated`: openpgp's maxDecompressedMessageSize, for a compressed packet inflated
   * here (inner-inflate.ts). `threaded`: decrypt on a worker thread (worth it for large
   * messages: see SEIPD_THREAD_MIN_BYTES).
   */
  constructor(
    encrypted: ReadableStream<Uint8Array>, sessionKey: { algorithm: string | null; data: Uint8Array }, maxInflated: number, threaded = false,
  ) {
    this.engine = threaded ? new ThreadEngine(sessionKey.algorithm ?? '', sessionKey.data) : new LocalEngine(sessionKey.algorithm ?? '', sessionKey.data);
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

  /**
   * The plaintext of the next ciphertext chunk; the end runs the MDC check. Keeps one more
   * chunk with the engine than it has taken, so that a thread decrypts while this one reads.
   */
  private async step(): Promise<Buffer[]> {
    try {
      while (this.ahead.length < 2 && !this.inputDone) {
        const r = await this.reader.read();
        const p = r.done ? this.engine.final() : this.engine.update(r.value);
        p.catch(() => {}); // taken in order below
        this.ahead.push(p);
        if (r.done) this.inputDone = true;
      }
      const out = await this.ahead.shift()!;
      if (this.inputDone && this.ahead.length === 0) this.finish();
      return out;
    } catch (err) {
      this.finish();
      if (err instanceof PgwError) this.failure ??= err;
      else throw err;
      return [];
    }
  }

  /** Stop: the engine's thread ends (also done by itself once the input has ended). */
  close(): void {
    this.inflate.dispose();
    this.finish();
  }

  private finish(): void {
    this.done = true;
    this.ahead.length = 0;
    this.engine.close();
  }

  private exclusive(fn: () => Promise<void>): Promise<void> {
    const run = this.busy.then(fn);
    this.busy = run.catch(() => {});
    return run;
  }
}
