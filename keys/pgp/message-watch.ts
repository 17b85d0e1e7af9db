/**
 * What we watch while openpgp reads the spool file.
 *
 * Strict framing: extra packets and appended junk are rejected. openpgp skips
 * Marker, Trust and Padding packets wherever they appear (RFC 9580 says to ignore them) and
 * ignores text after an armor's END line, so bytes appended to a valid message would pass
 * unnoticed. And once its armor decoder meets a '=' or '-' in the data it buffers the rest of
 * the file in memory, so a crafted armored upload could hold the whole file in RAM. The watch
 * sees the bytes as openpgp reads them (no second pass) and errors the stream on a violation;
 * anything else odd is left to openpgp and its codes.
 *
 * Progress. With `allowUnauthenticatedStream`, openpgp 6.3 deadlocks when the first packet
 * inside the encrypted data is a streaming packet type it then refuses (e.g. an SE packet
 * inside SEIPD — which any partner can send — or a first cipher block damaged in transit):
 * PacketList.read delays the error and keeps writing that packet's body into a stream nobody
 * reads, so decrypt() never settles and the job would hold a worker slot for ever. Every await
 * on openpgp therefore goes through `guard()`, which gives up when openpgp has neither asked
 * for input nor produced output for `stallMs` (time spent waiting for the disk, or with the
 * event loop blocked by a long synchronous step, does not count).
 */
import { createReadStream, type ReadStream } from 'node:fs';
import { PgwError } from '../../gateway/core/errors.js';
import { IGNORED_PACKET_TAGS, PacketWalker } from './packet-header.js';
import type { Seipd1Stream } from './seipd-v1.js';
import { PartialReframer } from './partial-reframe.js';

const ENCRYPTED_DATA_TAGS = new Set([9, 18, 20]); // SE, SEIPD, AEAD
/** Text allowed from the first '=' or '-' of the armored data to the end of the file. */
const MAX_ARMOR_TAIL = 64 * 1024;
const MAX_ARMOR_HEAD = 64 * 1024;
const ARMOR_LINE = /^-----[^-]+-----$/;
const EMPTY_LINE = /^[ \f\r\t\u00a0\u2000-\u200a\u202f\u205f\u3000]*$/;

export class MessageWatch {
  violation: string | null = null;
  /** The SEIPD v1 layer we decrypt ourselves (seipd-v1.ts): its verdict, which openpgp may rewrap. */
  inner: Pick<Seipd1Stream, 'failure' | 'settle'> | null = null;
  /** The binary input was read to its end. */
  ended = false;
  /** openpgp asked for input and we are waiting for the disk (or the armor decoder). */
  waitingForInput = false;
  private lastProgress = Date.now();
  private input: ReadStream | null = null;
  // top-level packet framing: session-key packets, then one encrypted data packet, then the end
  private readonly packets = new PacketWalker((tag) => this.packet(tag));
  private afterData = false;

  constructor(private readonly stallMs: number) {}

  error(): PgwError {
    return new PgwError('pgp.malformed', `${this.violation ?? 'malformed'}: send exactly one OpenPGP message per file`);
  }

  fail(why: string): void {
    this.violation ??= why;
  }

  openInput(spool: string): ReadStream {
    this.input = createReadStream(spool, { highWaterMark: 256 * 1024 });
    return this.input;
  }

  /** Release the spool file whatever state openpgp was left in. */
  closeInput(): void {
    this.input?.destroy();
  }

  progress(): void {
    this.lastProgress = Date.now();
  }

  /** Await an openpgp promise, unless openpgp stops making progress meanwhile. */
  async guard<T>(p: Promise<T>): Promise<T> {
    p.catch(() => {}); // if we give up, its late rejection is expected
    this.progress();
    const step = Math.max(10, Math.min(1000, Math.floor(this.stallMs / 4)));
    let tick = Date.now();
    let timer: NodeJS.Timeout | undefined;
    const stalled = new Promise<never>((_, reject) => {
      timer = setInterval(() => {
        const t = Date.now();
        if (t - tick > 2 * step || this.waitingForInput) this.progress();
        tick = t;
        if (t - this.lastProgress >= this.stallMs) {
          reject(new PgwError('pgp.malformed', 'the message could not be processed to its end (malformed or corrupted content)'));
        }
      }, step);
    });
    try {
      return await Promise.race([p, stalled]);
    } finally {
      clearInterval(timer);
    }
  }

  feed(chunk: Uint8Array): void {
    if (!this.violation) this.packets.feed(chunk);
  }

  private packet(tag: number): void {
    if (IGNORED_PACKET_TAGS.has(tag)) this.fail(`the file holds an extra packet (tag ${tag})`);
    else if (this.afterData) this.fail('the file holds data after the encrypted message');
    else if (ENCRYPTED_DATA_TAGS.has(tag)) this.afterData = true;
  }
}

/**
 * The binary message as openpgp pulls it (high-water mark 0: we read only when asked). The
 * watch sees the bytes as stored; openpgp gets them with partial body lengths re-framed into
 * 1 MiB parts (partial-reframe.ts), so that it handles few large chunks instead of
 * GnuPG's many 8 KiB ones.
 */
export function watchBinary(input: ReadableStream<Uint8Array>, watch: MessageWatch): ReadableStream<Uint8Array> {
  const reader = input.getReader();
  const reframer = new PartialReframer();
  return new ReadableStream<Uint8Array>({
    async pull(c) {
      // A pull must enqueue something (or close): the re-framer may hold a whole read.
      for (;;) {
        watch.waitingForInput = true;
        let r: ReadableStreamReadResult<Uint8Array>;
        try {
          r = await reader.read();
        } finally {
          watch.waitingForInput = false;
          watch.progress();
        }
        const out: Uint8Array[] = [];
        if (r.done) {
          watch.ended = true;
          reframer.end(out);
          for (const o of out) if (o.length) c.enqueue(o);
          c.close();
          return;
        }
        watch.feed(r.value);
        if (watch.violation) {
          c.error(watch.error());
          await reader.cancel().catch(() => {});
          return;
        }
        reframer.push(r.value, out);
        let any = false;
        for (const o of out) {
          if (o.length) {
            c.enqueue(o);
            any = true;
          }
        }
        if (any) return;
      }
    },
    cancel(reason) {
      return reader.cancel(reason);
    },
  }, { highWaterMark: 0 });
}

/**
 * Armored text: one block, nothing but white space after its END line, and a bounded tail
 * (openpgp's decoder buffers everything from the first '=' or '-' of the data on).
 */
export function watchArmor(input: ReadableStream<string>, watch: MessageWatch): ReadableStream<string> {
  let phase: 'begin' | 'headers' | 'data' | 'tail' = 'begin';
  let carry = '';
  let headChars = 0;
  let tailChars = 0;
  let afterEnd = false;
  const onLine = (raw: string) => {
    const line = raw.replace(/\r/g, '').replace(/[ \t]+$/, '');
    if (phase === 'begin') {
      if (ARMOR_LINE.test(line)) phase = 'headers';
    } else if (phase === 'headers') {
      if (EMPTY_LINE.test(line)) phase = 'data';
    } else if (afterEnd) {
      if (!/^\s*$/.test(line)) watch.fail('the file holds text after the armor END line');
    } else if (ARMOR_LINE.test(line)) {
      afterEnd = true;
    }
  };
  const scan = (s: string) => {
    let i = 0;
    while (i < s.length && !watch.violation) {
      if (phase === 'data') {
        const eq = s.indexOf('=', i);
        const dash = s.indexOf('-', i);
        const k = eq < 0 ? dash : dash < 0 ? eq : Math.min(eq, dash);
        if (k < 0) return '';
        phase = 'tail';
        tailChars += s.length - k; // the tail starts at the trigger character
        i = k;
        continue;
      }
      const nl = s.indexOf('\n', i);
      if (nl < 0) return s.slice(i);
      onLine(s.slice(i, nl));
      i = nl + 1;
    }
    return '';
  };
  return input.pipeThrough(new TransformStream<string, string>({
    transform(chunk, c) {
      if (phase === 'tail') tailChars += chunk.length;
      else if (phase !== 'data') headChars += chunk.length;
      carry = scan(carry + chunk);
      if (headChars > MAX_ARMOR_HEAD && (phase === 'begin' || phase === 'headers')) watch.fail('the armor header is too long');
      if (tailChars > MAX_ARMOR_TAIL) watch.fail('the armored text does not end after its checksum');
      if (watch.violation) c.error(watch.error());
      else c.enqueue(chunk);
    },
    flush(c) {
      if (carry) onLine(carry);
      if (watch.violation) c.error(watch.error());
    },
  }));
}
