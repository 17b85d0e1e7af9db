/**
 * OpenPGP packet framing (RFC 9580 §4.2), octet by octet: the one parser behind the framing
 * watch (message-watch.ts) and the partial-length re-framer (partial-reframe.ts), so both
 * always agree on where a packet, and each part of a partially-sized body, begins and ends.
 *
 * Glossary: a *header* is the tag octet plus the length octets of a packet; a body sent
 * with *partial lengths* comes in parts, each announced by its own length octets (a
 * *continuation* header, no tag), the last part with a definite length.
 */

/** What the octets collected so far say. */
export type FramedHeader =
  /** More octets are needed. */
  | { kind: 'incomplete' }
  /** The first octet is not a packet tag: not OpenPGP (openpgp rejects it). */
  | { kind: 'not-openpgp' }
  /** Old-format packet whose body runs to the end of the input. */
  | { kind: 'to-eof'; tag: number }
  /**
   * `len` body octets follow. `tag` is -1 for a continuation header. `partial`: more parts
   * follow this one (a new-format partial body length).
   */
  | { kind: 'length'; tag: number; len: number; partial: boolean };

const INCOMPLETE: FramedHeader = { kind: 'incomplete' };

function uintBE(h: readonly number[], from: number, n: number): number {
  let v = 0;
  for (let k = from; k < from + n; k++) v = v * 256 + h[k]!;
  return v;
}

/**
 * Parse `h`, the octets of one header collected so far (call again after each new octet
 * until it is complete). `continuation`: `h` holds the length of a further body part.
 */
export function parseHeaderOctets(h: readonly number[], continuation: boolean): FramedHeader {
  let at = 0;
  let tag = -1;
  if (!continuation) {
    const b0 = h[0];
    if (b0 === undefined) return INCOMPLETE;
    if (!(b0 & 0x80)) return { kind: 'not-openpgp' };
    if (!(b0 & 0x40)) { // old format: 1, 2, 4 length octets or "until the end"
      const n = [1, 2, 4, 0][b0 & 3]!;
      if (h.length < 1 + n) return INCOMPLETE;
      tag = (b0 >> 2) & 0x0f;
      return n === 0 ? { kind: 'to-eof', tag } : { kind: 'length', tag, len: uintBE(h, 1, n), partial: false };
    }
    tag = b0 & 0x3f;
    at = 1;
  }
  const l = h[at];
  if (l === undefined) return INCOMPLETE;
  if (l < 192) return { kind: 'length', tag, len: l, partial: false };
  if (l < 224) {
    if (h.length < at + 2) return INCOMPLETE;
    return { kind: 'length', tag, len: ((l - 192) << 8) + h[at + 1]! + 192, partial: false };
  }
  if (l === 255) {
    if (h.length < at + 5) return INCOMPLETE;
    return { kind: 'length', tag, len: uintBE(h, at + 1, 4), partial: false };
  }
  return { kind: 'length', tag, len: 2 ** (l & 0x1f), partial: true };
}

/**
 * Follows the top-level packets of a byte stream fed in order and names each packet's tag
 * as its header completes (body parts and their continuation headers are skipped).
 */
export class PacketWalker {
  /** Nothing more can be told: an old-format packet runs to the end, or the bytes are not OpenPGP. */
  stopped = false;
  private header: number[] = [];
  private skip = 0;
  private continuation = false;

  constructor(private readonly onPacket: (tag: number) => void) {}

  feed(chunk: Uint8Array): void {
    let i = 0;
    while (i < chunk.length && !this.stopped) {
      if (this.skip > 0) {
        const n = Math.min(this.skip, chunk.length - i);
        this.skip -= n;
        i += n;
        continue;
      }
      this.header.push(chunk[i++]!);
      const r = parseHeaderOctets(this.header, this.continuation);
      if (r.kind === 'incomplete') continue;
      this.header = [];
      if (r.kind === 'not-openpgp') {
        this.stopped = true; // openpgp rejects it
      } else if (r.kind === 'to-eof') {
        this.onPacket(r.tag);
        this.stopped = true;
      } else {
        if (r.tag >= 0) this.onPacket(r.tag);
        this.continuation = r.partial;
        this.skip = r.len;
      }
    }
  }
}

/** Marker, trust, padding: skipped wherever they appear (RFC 9580 §5.8, §5.10, §5.14; openpgp too). */
export const IGNORED_PACKET_TAGS: ReadonlySet<number> = new Set([10, 12, 21]);
/** Tags above this are non-critical: an unknown one is skipped, not refused (RFC 9580 §4.3). */
const LAST_CRITICAL_TAG = 39;

/**
 * Watches a packet sequence for a packet openpgp refuses there: one not in `allowed`, not
 * ignorable and critical. `misplaced` is the first such tag.
 */
export class PacketAllowList {
  misplaced: number | null = null;
  private readonly walker: PacketWalker;

  constructor(allowed: ReadonlySet<number>) {
    this.walker = new PacketWalker((tag) => {
      if (!allowed.has(tag) && !IGNORED_PACKET_TAGS.has(tag) && tag <= LAST_CRITICAL_TAG) this.misplaced ??= tag;
    });
  }

  feed(chunk: Uint8Array): void {
    if (this.misplaced === null) this.walker.feed(chunk);
  }
}
