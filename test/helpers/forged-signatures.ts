/**
 * Hand-made OpenPGP signature packets, as someone who knows only a partner's PUBLIC key can
 * make them: any signature type, any packet version, the partner's real key named as
 * issuer, random bytes as signature values. Raw bytes, so that nothing in
 * openpgp.js normalises or refuses them on the way out.
 *
 * Deterministic: values come from {@link SeededRandom}, and a test names the seed of a case
 * so that a failure can be replayed.
 */
import { deflateSync } from 'node:zlib';
import { openpgp } from '../../keys/pgp/openpgp-lib.js';

/** Every signature type of RFC 9580 §5.2.1, and one no standard defines. */
export const EVERY_SIGNATURE_TYPE: readonly { type: number; name: string }[] = [
  { type: 0x00, name: 'binary' }, { type: 0x01, name: 'text' }, { type: 0x02, name: 'standalone' },
  { type: 0x10, name: 'generic certification' }, { type: 0x11, name: 'persona certification' },
  { type: 0x12, name: 'casual certification' }, { type: 0x13, name: 'positive certification' },
  { type: 0x18, name: 'subkey binding' }, { type: 0x19, name: 'primary key binding' }, { type: 0x1f, name: 'direct key' },
  { type: 0x20, name: 'key revocation' }, { type: 0x28, name: 'subkey revocation' }, { type: 0x30, name: 'certification revocation' },
  { type: 0x40, name: 'timestamp' }, { type: 0x50, name: 'third-party confirmation' }, { type: 0x77, name: 'unknown (0x77)' },
];

/** mulberry32: small, fast, and the same sequence for the same seed everywhere. */
export class SeededRandom {
  private state: number;

  constructor(readonly seed: number) {
    this.state = seed >>> 0;
  }

  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }

  /** An integer in [0, n). */
  int(n: number): number {
    return this.next() % n;
  }

  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)]!;
  }

  bytes(n: number): Uint8Array {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) out[i] = this.next() & 0xff;
    return out;
  }
}

/** The key a forged packet names: what its public key tells anyone. */
export interface Issuer {
  /** 20 octets (v4 fingerprint). */
  fingerprint: Uint8Array;
  keyId: Uint8Array;
  algorithm: number;
  /** RSA modulus size in bits (the size of the signature value). */
  bits: number;
}

const hex = (s: string) => Uint8Array.from(Buffer.from(s, 'hex'));

export function issuerOf(key: openpgp.PublicKey): Issuer {
  const info = key.getAlgorithmInfo() as { algorithm: string; bits?: number };
  const fp = hex(key.getFingerprint());
  return {
    fingerprint: fp, keyId: hex(key.getKeyID().toHex()),
    algorithm: openpgp.enums.publicKey[info.algorithm as keyof typeof openpgp.enums.publicKey],
    bits: info.bits ?? 256,
  };
}

const concat = (parts: Uint8Array[]): Uint8Array => Uint8Array.from(Buffer.concat(parts));
const u16 = (n: number) => Uint8Array.of(n >> 8, n & 0xff);
const u32 = (n: number) => Uint8Array.of(n >>> 24, (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff);

/** A packet with a new-format header and a definite length. */
export function packet(tag: number, body: Uint8Array): Uint8Array {
  const n = body.length;
  const len = n < 192 ? Uint8Array.of(n) : n < 8384 ? Uint8Array.of(((n - 192) >> 8) + 192, (n - 192) & 0xff) : concat([Uint8Array.of(255), u32(n)]);
  return concat([Uint8Array.of(0xc0 | tag), len, body]);
}

function subpacket(type: number, data: Uint8Array): Uint8Array {
  return concat([Uint8Array.of(data.length + 1, type), data]);
}

/** A random MPI of `bits` bits (top bit set). */
function mpi(rnd: SeededRandom, bits: number): Uint8Array {
  const b = rnd.bytes(Math.ceil(bits / 8));
  b[0] = (b[0]! | 0x80) >> ((8 - (bits % 8)) % 8);
  return concat([u16(bits), b]);
}

/** Random signature values in the shape the algorithm's are. */
function signatureValues(issuer: Issuer, rnd: SeededRandom): Uint8Array {
  switch (issuer.algorithm) {
    case 1: case 3: return mpi(rnd, issuer.bits); // RSA: one value, the modulus' size
    case 27: return rnd.bytes(64); // Ed25519 (native)
    case 28: return rnd.bytes(114); // Ed448
    default: return concat([mpi(rnd, 256), mpi(rnd, 256)]); // EdDSA legacy, ECDSA (P-256), DSA
  }
}

export interface ForgeOptions {
  type: number;
  /** Packet version: 4 (what v4 keys make), 3, 5 (LibrePGP) or 6 (RFC 9580). */
  version?: 3 | 4 | 5 | 6;
  created?: Date;
  hash?: number;
}

/**
 * A signature packet (header included) naming `issuer`, with random values: it verifies
 * against nothing, but everything a parser looks at is well formed.
 */
export function forgedSignature(issuer: Issuer, rnd: SeededRandom, o: ForgeOptions): Uint8Array {
  const version = o.version ?? 4;
  const hash = o.hash ?? openpgp.enums.hash.sha256;
  const created = u32(Math.floor((o.created ?? new Date(Date.now() - 60_000)).getTime() / 1000));
  const left16 = rnd.bytes(2);
  const values = signatureValues(issuer, rnd);
  if (version === 3) {
    return packet(2, concat([Uint8Array.of(3, 5, o.type), created, issuer.keyId, Uint8Array.of(issuer.algorithm, hash), left16, values]));
  }
  const hashed = concat([subpacket(2, created), subpacket(33, concat([Uint8Array.of(4), issuer.fingerprint]))]);
  const unhashed = subpacket(16, issuer.keyId);
  const head = Uint8Array.of(version, o.type, issuer.algorithm, hash);
  if (version === 4) {
    return packet(2, concat([head, u16(hashed.length), hashed, u16(unhashed.length), unhashed, left16, values]));
  }
  const counts = (b: Uint8Array) => concat([u32(b.length), b]);
  const salt = version === 6 ? concat([Uint8Array.of(16), rnd.bytes(16)]) : new Uint8Array();
  return packet(2, concat([head, counts(hashed), counts(unhashed), left16, salt, values]));
}

/** A one-pass signature packet announcing a signature of `type` by `issuer` (v3). */
export function forgedOnePass(issuer: Issuer, o: { type: number; hash?: number; nested: boolean }): Uint8Array {
  return packet(4, concat([Uint8Array.of(3, o.type, o.hash ?? openpgp.enums.hash.sha256, issuer.algorithm), issuer.keyId, Uint8Array.of(o.nested ? 0 : 1)]));
}

/** Marker, padding, literal and user id packets: not signatures, and the first two skipped unseen by openpgp. */
export function nonSignaturePackets(rnd: SeededRandom): { name: string; bytes: Uint8Array }[] {
  return [
    { name: 'marker', bytes: packet(10, new TextEncoder().encode('PGP')) },
    { name: 'padding', bytes: packet(21, rnd.bytes(16)) },
    { name: 'literal', bytes: packet(11, concat([Uint8Array.of(0x62, 0), u32(0), new TextEncoder().encode('x')])) },
    { name: 'user id', bytes: packet(13, new TextEncoder().encode('Mallory <m@example.invalid>')) },
  ];
}

/** A compressed data packet (ZLIB) holding `inner` packets. */
export function zlibPacket(inner: Uint8Array): Uint8Array {
  return packet(8, concat([Uint8Array.of(2), deflateSync(inner)]));
}

/** The top-level packets of `bytes` (new-format headers, definite lengths: what openpgp.js writes for in-memory data). */
export function splitPackets(bytes: Uint8Array): { tag: number; bytes: Uint8Array; body: Uint8Array }[] {
  const out: { tag: number; bytes: Uint8Array; body: Uint8Array }[] = [];
  let i = 0;
  while (i < bytes.length) {
    const h = bytes[i]!;
    if ((h & 0xc0) !== 0xc0) throw new Error('splitPackets: new-format headers only');
    const l = bytes[i + 1]!;
    let body: number;
    let len: number;
    if (l < 192) [body, len] = [i + 2, l];
    else if (l < 224) [body, len] = [i + 3, ((l - 192) << 8) + bytes[i + 2]! + 192];
    else if (l === 255) [body, len] = [i + 6, Buffer.from(bytes).readUInt32BE(i + 2)];
    else throw new Error('splitPackets: partial lengths not supported');
    out.push({ tag: h & 0x3f, bytes: bytes.subarray(i, body + len), body: bytes.subarray(body, body + len) });
    i = body + len;
  }
  return out;
}

/**
 * A message object whose packets are exactly the raw packets of `bytes`, for openpgp.encrypt
 * to wrap as they are (readMessage would keep the packets after the literal data in a
 * stream that encrypt never writes, and would parse, and so judge, the rest).
 */
export function rawMessage(bytes: Uint8Array): openpgp.Message<Uint8Array> {
  const list = new openpgp.PacketList<openpgp.AnyPacket>();
  const Unparseable = openpgp.UnparseablePacket as unknown as new (tag: number, raw: Uint8Array) => openpgp.UnparseablePacket;
  for (const p of splitPackets(bytes)) list.push(new Unparseable(p.tag, p.body));
  return new openpgp.Message(list as never) as openpgp.Message<Uint8Array>;
}

/** ASCII armor around raw packets (no checksum: RFC 9580 makes it optional). */
export function armored(kind: 'PGP SIGNATURE' | 'PGP PUBLIC KEY BLOCK', bytes: Uint8Array): string {
  const b64 = Buffer.from(bytes).toString('base64').replace(/.{1,64}/g, '$&\n');
  return `-----BEGIN ${kind}-----\n\n${b64}-----END ${kind}-----\n`;
}

export { concat };
