/**
 * A zip/zlib compressed data packet that makes up the whole of a SEIPD v1 plaintext (what
 * GnuPG sends when compression is on) is inflated here, with Node's zlib, instead of by
 * openpgp.js's JavaScript inflater (fflate, 4–5× slower on JSON here; Node's own
 * DecompressionStream stays hidden from openpgp because it queues ~256 MiB — see
 * keys/pgp/openpgp-lib.ts). openpgp then reads the packets that were inside — the same
 * packets, checked by the same message grammar, because openpgp parses a compressed
 * packet's contents exactly as it parses a message.
 *
 * What openpgp enforces inside a compressed packet, we enforce: only literal, one-pass
 * signature and signature packets (no second compression layer), at most
 * `maxDecompressedMessageSize` octets, nothing after the compressed packet. Memory: zlib
 * inflates on the thread pool and pauses while 1 MiB of output waits to be read (Node's
 * zlib checks its readable buffer between output chunks), and at most ~2 MiB of compressed
 * input waits for it, so a bomb costs no more memory than any other input.
 */
import { createInflate, createInflateRaw, type Inflate, type InflateRaw, type ZlibOptions } from 'node:zlib';
import { PgwError } from '../../gateway/core/errors.js';
import { PacketAllowList, parseHeaderOctets, type FramedHeader } from './packet-header.js';

const COMPRESSED_TAG = 8;
/** Input is written in slices this big, and more is read once less than HUNGRY_BELOW waits. */
const WRITE_SLICE = 256 * 1024;
const HUNGRY_BELOW = 2 * 1024 * 1024;
/** Output zlib may hold before it pauses. */
const OUTPUT_BUFFER = 1024 * 1024;
/** Transform options pass through zlib's constructor (not in its typings). */
const ZLIB_OPTIONS = { chunkSize: 256 * 1024, readableHighWaterMark: OUTPUT_BUFFER } as ZlibOptions;
/** RFC 9580 compression ids we inflate: 1 ZIP (raw deflate), 2 ZLIB. Others pass to openpgp. */
const INFLATERS: Record<number, () => Inflate | InflateRaw> = {
  1: () => createInflateRaw(ZLIB_OPTIONS),
  2: () => createInflate(ZLIB_OPTIONS),
};
/** Literal, one-pass signature, signature: openpgp's allowed set inside a compressed packet. */
const ALLOWED_INSIDE: ReadonlySet<number> = new Set([11, 4, 2]);

export class InnerInflate {
  /** 'head': reading the first packet's header and algorithm; 'pass': not ours, bytes go on as they are. */
  private phase: 'head' | 'pass' | 'body' | 'after' = 'head';
  private head: number[] = [];
  /** The first packet's header, once complete (a compressed packet's). */
  private first: FramedHeader | null = null;
  /** Length octets of the body's next part. */
  private header: number[] = [];
  /** Body octets of the current part still to come (when not `toEof`). */
  private left = 0;
  private partial = false;
  private toEof = false;
  private zlib: Inflate | InflateRaw | null = null;
  private inputEnded = false;
  /** zlib has emitted its last output (or there is no zlib). */
  private ended = false;
  private error: PgwError | null = null;
  private wake: (() => void) | null = null;
  private inflated = 0;
  private readonly inside = new PacketAllowList(ALLOWED_INSIDE);

  constructor(private readonly maxInflated: number) {}

  /** More plaintext may be pushed: zlib has (almost) caught up with what it was given. */
  get hungry(): boolean {
    return !this.zlib || this.zlib.writableLength < HUNGRY_BELOW;
  }

  /** Plaintext octets in: passed on to `out` unchanged, or (a compressed body) written to zlib. */
  push(b: Buffer, out: Buffer[]): void {
    let i = 0;
    while (i < b.length) {
      switch (this.phase) {
        case 'pass':
          out.push(i === 0 ? b : b.subarray(i));
          return;
        case 'after':
          throw new PgwError('pgp.malformed', 'the encrypted data holds packets after its compressed packet');
        case 'head':
          this.head.push(b[i++]!);
          this.onHeadOctet(out);
          break;
        case 'body': {
          if (this.toEof || this.left > 0) {
            const n = this.toEof ? b.length - i : Math.min(this.left, b.length - i);
            for (let at = i; at < i + n; at += WRITE_SLICE) this.write(b.subarray(at, Math.min(i + n, at + WRITE_SLICE)));
            i += n;
            if (!this.toEof) {
              this.left -= n;
              this.checkBodyEnd();
            }
            continue;
          }
          this.header.push(b[i++]!);
          const r = parseHeaderOctets(this.header, true);
          if (r.kind !== 'length') continue;
          this.header = [];
          this.left = r.len;
          this.partial = r.partial;
          this.checkBodyEnd();
          break;
        }
      }
    }
  }

  /** The plaintext has ended (after its MDC checked out). */
  endInput(out: Buffer[]): void {
    if (this.inputEnded) return;
    this.inputEnded = true;
    if (this.phase === 'head' && this.head.length) out.push(Buffer.from(this.head)); // too short to be ours: openpgp judges it
    if (!this.zlib) {
      this.ended = true;
      return;
    }
    if (this.phase === 'body' && (this.left > 0 || this.partial || this.header.length)) {
      throw new PgwError('pgp.malformed', 'the compressed packet is cut short');
    }
    this.zlib.end();
  }

  /** Stop inflating (the message failed or its reader gave up): release zlib's memory now. */
  dispose(): void {
    if (this.zlib && !this.ended) this.zlib.destroy();
    this.ended = true;
  }

  /** All output is out. */
  get done(): boolean {
    return this.ended;
  }

  /**
   * Inflated octets to `out`: returns once there are some, or zlib wants more input, or it
   * has ended. zlib works on the thread pool meanwhile and pauses when 1 MiB of output waits
   * (its readable high-water mark): memory stays bounded whatever the ratio.
   */
  async pump(out: Buffer[]): Promise<void> {
    const z = this.zlib;
    if (!z) return;
    for (;;) {
      if (this.error) throw this.error;
      let d: Buffer | null;
      while ((d = z.read() as Buffer | null) !== null) this.deliver(d, out);
      if (out.length || this.ended) return;
      if (this.hungry && !this.inputEnded) return;
      await new Promise<void>((resolve) => {
        this.wake = resolve;
      });
    }
  }

  private write(slice: Buffer): void {
    this.zlib!.write(slice, (err) => {
      if (err) this.error ??= inflateError(err);
      this.poke();
    });
  }

  private poke(): void {
    const w = this.wake;
    this.wake = null;
    w?.();
  }

  private onHeadOctet(out: Buffer[]): void {
    if (!this.first) {
      const r = parseHeaderOctets(this.head, false);
      if (r.kind === 'incomplete') return;
      if (r.kind === 'not-openpgp' || r.tag !== COMPRESSED_TAG || (r.kind === 'length' && r.len === 0)) this.passHead(out);
      else this.first = r; // the algorithm octet comes next
      return;
    }
    const make = INFLATERS[this.head[this.head.length - 1]!];
    if (!make) {
      this.passHead(out); // uncompressed or bzip2: openpgp's own
      return;
    }
    const first = this.first;
    const z = make();
    z.on('readable', () => this.poke());
    z.on('end', () => {
      this.ended = true;
      this.poke();
    });
    z.on('error', (err) => {
      this.error ??= inflateError(err);
      this.poke();
    });
    this.zlib = z;
    this.phase = 'body';
    if (first.kind === 'to-eof') {
      this.toEof = true;
    } else if (first.kind === 'length') {
      this.left = first.len - 1; // the algorithm octet was part of it
      this.partial = first.partial;
      this.checkBodyEnd();
    }
  }

  /** The compressed packet's last (definite-length) part is all in: anything after it is refused. */
  private checkBodyEnd(): void {
    if (this.left === 0 && !this.partial) this.phase = 'after';
  }

  private passHead(out: Buffer[]): void {
    out.push(Buffer.from(this.head));
    this.head = [];
    this.phase = 'pass';
  }

  private deliver(d: Buffer, out: Buffer[]): void {
    this.inflated += d.length;
    if (this.inflated > this.maxInflated) throw new PgwError('limits.decompressed_size', undefined, { limit: this.maxInflated });
    this.inside.feed(d);
    if (this.inside.misplaced !== null) {
      throw new PgwError('pgp.malformed', `the compressed packet holds a packet not allowed there (tag ${this.inside.misplaced})`);
    }
    out.push(d);
  }
}

function inflateError(err: Error): PgwError {
  return new PgwError('pgp.malformed', `the compressed packet does not inflate (${(err as NodeJS.ErrnoException).code ?? 'zlib error'})`);
}
