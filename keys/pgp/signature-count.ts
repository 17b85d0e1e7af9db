/**
 * The one rule for "this is signed", used by every place that decides it: key submissions
 * (keys/partner-key-submission.ts), revocation certificates (keys/partner-revocation.ts) and
 * batches (workers/decrypt-stage.ts).
 *
 * Why a rule of its own: openpgp.js judges only the signatures it chooses to return.
 * `verify()` silently leaves out signature packets whose type is not binary or text
 * (standalone, timestamp, certifications, bindings, revocations…), `readSignature()` keeps
 * packets it cannot parse (unknown versions, algorithms) as unparseable ones that nothing
 * looks at, and a key revocation is checked on the first packet of a certificate only. Code
 * that judged "every result verified" therefore accepted a hand-made packet with random
 * values next to — or instead of — a real signature (so a forged key submission once made the
 * attacker's key the partner's).
 *
 * The rule: count the signature packets that are PRESENT (from the parsed packet list, and
 * for files also from the raw packet framing; anything unparsed counts and is refused);
 * every one must be of a type allowed for the purpose and verify cryptographically against
 * an allowed key; the number verified must equal the number present and be at least one.
 * Anything else is refused with the entry point's own codes.
 */
import { openpgp } from './openpgp-lib.js';
import { PgwError, type ErrorCode } from '../../gateway/core/errors.js';
import { PacketWalker } from './packet-header.js';

const SIGNATURE_TAG = openpgp.enums.packet.signature;
const T = openpgp.enums.signature;

/**
 * Signature types each purpose accepts.
 * - `document`: a signature over data — a batch's literal data, or a detached signature over
 *   a submitted key file. Text (0x01) as well as binary (0x00): gpg --detach-sign makes
 *   binary, but openpgp.js signs a message made from text as 0x01, and a text signature
 *   only lets line endings differ, which cannot change what a key file or batch says.
 * - `keyRevocation`: a key revocation certificate (0x20) and nothing else — subkey and
 *   certification revocations (0x28, 0x30) revoke something else.
 */
export const SIGNATURE_PURPOSES = {
  document: new Set<number>([T.binary, T.text]),
  keyRevocation: new Set<number>([T.keyRevocation]),
} as const;
export type SignaturePurpose = keyof typeof SIGNATURE_PURPOSES;

/** The entry point's codes: nothing signed at all, and anything else refused. */
export interface SignatureCodes {
  missing: ErrorCode;
  invalid: ErrorCode;
}

export interface SignatureJudgement<T> {
  purpose: SignaturePurpose;
  codes: SignatureCodes;
  /**
   * Verify ONE signature packet cryptographically against an allowed key (and the entry
   * point's own policy: key window, signature time); resolve to what the caller keeps (the
   * signer), throw (a PgwError with the caller's code) to refuse.
   */
  verify(packet: openpgp.SignaturePacket, index: number): Promise<T>;
}

/** A packet as openpgp parsed it: a packet class instance, or an unparseable one (`tag` only). */
export type ParsedPacket = openpgp.AnyPacket | { tag?: number };

/** The packet tag of a parsed packet (unparseable packets carry theirs as a field). */
export function packetTag(p: ParsedPacket): number | undefined {
  const ctor = (p as { constructor?: { tag?: number } }).constructor;
  return p instanceof openpgp.UnparseablePacket ? (p as { tag: number }).tag : ctor?.tag ?? (p as { tag?: number }).tag;
}

/**
 * Judge every signature packet present. `present` is every packet that IS a signature (or
 * stands where one must be: a signature file's packets); returns one result per packet,
 * in order, or throws with `codes.missing` (none present) or `codes.invalid`.
 */
export async function judgeSignaturePackets<R>(present: readonly ParsedPacket[], j: SignatureJudgement<R>): Promise<R[]> {
  if (present.length === 0) throw new PgwError(j.codes.missing);
  const allowed = SIGNATURE_PURPOSES[j.purpose];
  const packets: openpgp.SignaturePacket[] = [];
  for (const p of present) {
    if (!(p instanceof openpgp.SignaturePacket)) {
      throw new PgwError(j.codes.invalid, packetTag(p) === SIGNATURE_TAG
        ? 'a signature packet could not be read (unsupported version or algorithm)'
        : `the signature holds a packet that is not a signature (tag ${packetTag(p) ?? 'unknown'})`);
    }
    if (p.signatureType === null || !allowed.has(p.signatureType)) {
      throw new PgwError(j.codes.invalid, `a signature of type 0x${(p.signatureType ?? 0).toString(16).padStart(2, '0')} is not accepted here`,
        { signatureType: p.signatureType });
    }
    packets.push(p);
  }
  const verified: R[] = [];
  for (const [i, p] of packets.entries()) verified.push(await j.verify(p, i));
  // Each verify() either resolved or threw; the count is stated anyway, as the rule says it.
  if (verified.length !== present.length || verified.length < 1) {
    throw new PgwError(j.codes.invalid, 'not every signature packet verified');
  }
  return verified;
}

/**
 * The packets of a signature file (a detached signature, a revocation certificate), as
 * openpgp parsed them — unparseable ones included — after checking the raw packet framing:
 * every packet must be a signature packet (also the marker, trust and padding packets
 * openpgp would skip unseen), and openpgp must have given back exactly as many.
 * `armorTypes`: the armor block types the file may use when armored.
 */
export async function readSignatureFile(
  file: { armored: string } | { binary: Uint8Array }, codes: SignatureCodes, armorTypes: readonly openpgp.enums.armor[] = [openpgp.enums.armor.signature],
): Promise<ParsedPacket[]> {
  const bad = (message: string) => new PgwError(codes.invalid, message);
  let binary: Uint8Array;
  if ('armored' in file) {
    let unarmored: { type: openpgp.enums.armor; data: unknown };
    try {
      unarmored = await openpgp.unarmor(file.armored);
    } catch {
      throw bad('the file is not OpenPGP armor');
    }
    if (!armorTypes.includes(unarmored.type)) throw bad('the armored file is not a signature');
    if (!(unarmored.data instanceof Uint8Array)) throw bad('the armored file could not be read');
    binary = unarmored.data;
  } else {
    binary = file.binary;
  }

  const tags: number[] = [];
  const walker = new PacketWalker((tag) => tags.push(tag));
  walker.feed(binary);
  if (binary.length > 0 && tags.length === 0) throw bad('the file is not an OpenPGP signature');
  const foreign = tags.find((t) => t !== SIGNATURE_TAG);
  if (foreign !== undefined) throw bad(`the signature holds a packet that is not a signature (tag ${foreign})`);

  let parsed: ParsedPacket[];
  try {
    parsed = [...(await openpgp.readSignature({ binarySignature: binary })).packets];
  } catch {
    throw bad('the file is not an OpenPGP signature');
  }
  if (parsed.length !== tags.length) throw bad('a signature packet could not be read');
  return parsed;
}

/** One result of openpgp's verify()/decrypt(): the packet it judged and its verdict. */
export interface VerificationResult {
  keyID: openpgp.KeyID;
  signature: Promise<openpgp.Signature>;
  verified: Promise<true>;
}

export interface MessageJudgement<R> extends Omit<SignatureJudgement<R>, 'verify'> {
  /** Judge one counted packet with openpgp's result for it (await `result.verified`, then the policy). */
  verify(packet: openpgp.SignaturePacket, result: VerificationResult): Promise<R>;
  /** Awaits openpgp's promises (the decrypt stage's stall guard); plain await by default. */
  settle?: <T>(p: Promise<T>) => Promise<T>;
  /** What a result that cannot be read is refused with (default: `codes.invalid`). */
  unreadable?: (err: unknown) => unknown;
}

/**
 * {@link judgeSignaturePackets} for a message: the packets {@link MessageSignatureCount}
 * counted, each matched to openpgp's result for it. A packet openpgp returned no result
 * for (another type, unparseable, a signature not paired with its one-pass packet) is
 * refused, and so is a result for a packet that was not counted. Call it once the data has
 * been read to its end.
 */
export async function judgeMessageSignatures<R>(
  count: MessageSignatureCount, signatures: readonly VerificationResult[], j: MessageJudgement<R>,
): Promise<R[]> {
  const settle = j.settle ?? (<T>(p: Promise<T>) => p);
  const results = new Map<openpgp.SignaturePacket, VerificationResult>();
  for (const s of signatures) {
    let packet: openpgp.SignaturePacket | undefined;
    try {
      packet = (await settle(s.signature)).packets[0];
    } catch (err) {
      if (err instanceof PgwError) throw err;
      throw j.unreadable?.(err) ?? new PgwError(j.codes.invalid, 'a signature could not be read');
    }
    if (!packet || results.has(packet)) throw new PgwError(j.codes.invalid, 'a signature could not be read');
    results.set(packet, s);
  }
  const present = await settle(count.present());
  const judged = await judgeSignaturePackets(present, {
    purpose: j.purpose,
    codes: j.codes,
    verify: async (packet) => {
      const result = results.get(packet);
      if (!result) throw new PgwError(j.codes.invalid, 'a signature packet was not verified (not a document signature, or not paired with its one-pass packet)');
      return j.verify(packet, result);
    },
  });
  if (results.size !== present.length) throw new PgwError(j.codes.invalid, 'not every signature packet was counted');
  return judged;
}

/** What is used of an openpgp Message (any data type). */
interface MessagePackets {
  packets: openpgp.PacketList<openpgp.AnyPacket>;
  unwrapCompressed(): { packets: openpgp.PacketList<openpgp.AnyPacket> };
}

interface FollowedList {
  stream?: ReadableStream<ParsedPacket> | null;
}

/**
 * The signature packets of a (decrypted) message, counted as openpgp reads them: those it
 * has parsed already (before the literal data) and those that follow the data, which it
 * reads from the packet list's stream — where `verify()` pairs them with one-pass packets
 * and drops whatever it does not pair. Both the message's own packet list and the one
 * inside its compressed packet are followed, whether openpgp streams them or holds them
 * whole. Create it after openpgp has read the message head and before `verify()`; read
 * {@link present} after the data has been read to its end.
 */
export class MessageSignatureCount {
  private readonly seen: ParsedPacket[] = [];
  /** Streams followed that have not ended yet (or could not be followed). */
  private open = 0;
  /** In-memory packet streams (openpgp's form for data it has whole), read once complete. */
  private readonly whole: Promise<void>[] = [];

  constructor(message: MessagePackets) {
    const lists = new Set<openpgp.PacketList<openpgp.AnyPacket>>([message.packets, message.unwrapCompressed().packets]);
    for (const list of lists) this.follow(list);
  }

  /** Every signature packet of the message; refuses when openpgp has not read it to its end. */
  async present(): Promise<ParsedPacket[]> {
    await Promise.all(this.whole);
    if (this.open > 0) throw new PgwError('internal.processing_failed', 'the message was not read to its end');
    return [...this.seen];
  }

  private note(p: ParsedPacket): void {
    if (packetTag(p) === SIGNATURE_TAG) this.seen.push(p);
  }

  private follow(list: openpgp.PacketList<openpgp.AnyPacket>): void {
    for (const p of list) this.note(p);
    const l = list as unknown as FollowedList;
    if (!l.stream) return; // read whole already
    this.open++;
    if (l.stream instanceof ReadableStream) {
      l.stream = l.stream.pipeThrough(new TransformStream<ParsedPacket, ParsedPacket>({
        transform: (p, c) => {
          this.note(p);
          c.enqueue(p);
        },
        flush: () => {
          this.open--;
        },
      }));
      return;
    }
    // An in-memory stream (an array filled as openpgp parses): verify() empties it when it
    // reads it, so a copy is taken now and read once openpgp has finished writing it.
    const arrayStream = l.stream as unknown as { clone?: () => { readToEnd(join: (xs: ParsedPacket[]) => ParsedPacket[]): Promise<ParsedPacket[]> } };
    if (!Array.isArray(arrayStream) || typeof arrayStream.clone !== 'function') return; // unknown form: stays open, so refused
    this.whole.push(arrayStream.clone().readToEnd((xs) => xs).then((rest) => {
      for (const p of rest) this.note(p);
      this.open--;
    }, () => {
      // openpgp failed writing it (and says so where the data is read): stays open, so refused.
    }));
  }
}
