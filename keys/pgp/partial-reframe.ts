/**
 * Re-frames the partial body lengths of the top-level encrypted data packet (SEIPD, AEAD)
 * into 1 MiB parts before openpgp.js reads it.
 *
 * Why: GnuPG writes the encrypted data packet in 8 KiB partial-length parts, and openpgp.js
 * carries each part as its own chunk through every web stream of its decrypt pipeline
 * (decrypt, MDC hash, packet parser, literal data, signature hash): per-chunk overhead, not
 * cryptography, dominates the decrypt stage's CPU time (bench/RESULTS.md §2).
 *
 * Only length octets change. Packet tags and bodies — everything the session key, the MDC,
 * AEAD tags and the signatures cover (none of them covers the outer length octets) — pass
 * byte for byte and in order. Every other packet passes unchanged, its length octets too:
 * openpgp refuses partial lengths on packet types that may not have them, and re-framing
 * those would turn a refused message into an accepted one. The spool file (and its digest
 * in the ledger) is never modified; the framing watch sees the bytes as stored.
 */
import { parseHeaderOctets } from './packet-header.js';

/** 2^20: the part size we emit (a partial length must be a power of two ≤ 2^30). */
const PART_LOG2 = 20;
const PART = 1 << PART_LOG2;
/** SEIPD (v1 as GnuPG sends it, v2) and the AEAD packet: the only ones worth re-framing. */
const REFRAMED_TAGS = new Set([18, 20]);

export class PartialReframer {
  private header: number[] = [];
  /** The next header is the length of a further body part (not a new packet). */
  private continuation = false;
  /** Bytes of the current body part still to come. */
  private left = 0;
  /** The current packet's body is being collected into big parts. */
  private reframing = false;
  /** The current part is the packet's last (not a partial length). */
  private lastPart = false;
  /** Old-format indeterminate length, or not OpenPGP: pass the rest through. */
  private passRest = false;
  private pending: Uint8Array[] = [];
  /** Index of the first piece of `pending` not yet taken (no O(n) shift per piece). */
  private head = 0;
  private pendingBytes = 0;

  /** Feed bytes in order; what may go on to openpgp is appended to `out`. */
  push(chunk: Uint8Array, out: Uint8Array[]): void {
    let i = 0;
    while (i < chunk.length) {
      if (this.passRest) {
        out.push(chunk.subarray(i));
        return;
      }
      if (this.left > 0) {
        const n = Math.min(this.left, chunk.length - i);
        const piece = chunk.subarray(i, i + n);
        this.left -= n;
        i += n;
        if (!this.reframing) {
          out.push(piece);
          continue;
        }
        this.pending.push(piece);
        this.pendingBytes += n;
        // Full parts go out, except the very last MiB of the body: it may be the final part.
        while (this.pendingBytes >= PART && !(this.lastPart && this.left === 0 && this.pendingBytes === PART)) {
          out.push(Uint8Array.of(0xe0 | PART_LOG2), this.take(PART));
        }
        if (this.lastPart && this.left === 0) this.finishPacket(out);
        continue;
      }
      this.header.push(chunk[i++]!);
      this.onHeaderOctet(out);
    }
  }

  /**
   * End of input: whatever is held goes on. A truncated body goes out under a partial length
   * that promises more than follows, so openpgp still sees the truncation and rejects it.
   */
  end(out: Uint8Array[]): void {
    if (this.reframing && this.pendingBytes > 0) out.push(Uint8Array.of(0xe0 | PART_LOG2), this.take(this.pendingBytes));
    if (this.header.length) out.push(Uint8Array.from(this.header));
    this.header = [];
  }

  /** The first `n` pending bytes as one contiguous chunk. */
  private take(n: number): Uint8Array {
    const joined = new Uint8Array(n);
    let at = 0;
    while (at < n) {
      const b = this.pending[this.head]!;
      const k = Math.min(b.length, n - at);
      joined.set(k === b.length ? b : b.subarray(0, k), at);
      at += k;
      if (k === b.length) this.head++;
      else this.pending[this.head] = b.subarray(k);
    }
    this.pendingBytes -= n;
    if (this.head === this.pending.length) {
      this.pending = [];
      this.head = 0;
    }
    return joined;
  }

  /** The packet's last part: a five-octet definite length with all that is held. */
  private finishPacket(out: Uint8Array[]): void {
    const n = this.pendingBytes;
    const h = new Uint8Array(5);
    h[0] = 0xff;
    new DataView(h.buffer).setUint32(1, n);
    out.push(h);
    if (n > 0) out.push(this.take(n));
    this.reframing = false;
    this.lastPart = false;
  }

  private onHeaderOctet(out: Uint8Array[]): void {
    const r = parseHeaderOctets(this.header, this.continuation);
    if (r.kind === 'incomplete') return;
    if (r.kind !== 'length') {
      this.passRest = true; // not a packet, or old-format "to the end": nothing to re-frame
      this.flushHeader(out);
      return;
    }
    if (!this.continuation) {
      // A new packet: re-frame it only if it is an encrypted data packet in partial lengths.
      this.reframing = r.partial && REFRAMED_TAGS.has(r.tag);
      if (this.reframing) {
        out.push(Uint8Array.of(this.header[0]!)); // the tag octet as sent; lengths are ours from here
        this.header = [];
      }
    }
    if (!this.reframing) this.flushHeader(out);
    this.header = [];
    this.continuation = r.partial;
    this.left = r.len;
    if (this.reframing) {
      this.lastPart = !r.partial;
      if (this.lastPart && r.len === 0) this.finishPacket(out);
    }
  }

  private flushHeader(out: Uint8Array[]): void {
    if (this.header.length) out.push(Uint8Array.from(this.header));
    this.header = [];
  }
}
