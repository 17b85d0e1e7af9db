// test-pass: once
/**
 * keys/pgp/seipd-v1: our SEIPD v1 layer against OpenSSL's CFB and against openpgp.js itself —
 * the same plaintext for what openpgp accepts, a rejection for what it rejects, under any
 * chunking of the ciphertext.
 */
import { expect } from 'chai';
import { createCipheriv, createDecipheriv, createHash, randomBytes, randomInt } from 'node:crypto';
import { deflateRawSync, deflateSync } from 'node:zlib';
import { openpgp } from '../../../../keys/pgp/openpgp-lib.js';
import { CfbDecipher, Seipd1Decoder, Seipd1Stream, fastPathTakes } from '../../../../keys/pgp/seipd-v1.js';
import { isPgwError } from '../../../../gateway/core/errors.js';
import { openpgpConfig } from '../../../../keys/pgp/openpgp-policy.js';
import { genEccKey, type TestKeyPair } from '../../../helpers/pgp-fixtures.js';

const CONFIG = openpgpConfig({ decompressedBytes: 64 * 1024 * 1024 });
const KEY_SIZES = { aes128: 16, aes192: 24, aes256: 32 } as const;

/** `buf` cut at random places (some pieces empty or shorter than a block). */
function randomPieces(buf: Uint8Array): Uint8Array[] {
  const out: Uint8Array[] = [];
  let at = 0;
  while (at < buf.length) {
    const n = Math.min(buf.length - at, [0, 1, 7, 15, 16, 17, 333, 4096, 65536][randomInt(9)]!);
    out.push(buf.subarray(at, at + n));
    at += n;
  }
  return out;
}

function streamOf(pieces: Uint8Array[]): ReadableStream<Uint8Array> {
  let i = 0;
  return new ReadableStream<Uint8Array>({
    pull(c) {
      if (i < pieces.length) c.enqueue(pieces[i++]!);
      else c.close();
    },
  });
}

async function readAll(s: ReadableStream<Uint8Array>): Promise<Buffer> {
  const parts: Uint8Array[] = [];
  const r = s.getReader();
  for (;;) {
    const { done, value } = await r.read();
    if (done) return Buffer.concat(parts);
    parts.push(value);
  }
}

/** A SEIPD v1 body made by hand: CFB(prefix ‖ inner ‖ mdcHeader ‖ SHA-1(prefix ‖ inner ‖ mdcHeader)). */
function sealByHand(algorithm: keyof typeof KEY_SIZES, key: Buffer, inner: Uint8Array, mdcHeader = Buffer.from([0xd3, 0x14])): Buffer {
  const prefix = randomBytes(16);
  const withRepeat = Buffer.concat([prefix, prefix.subarray(14)]);
  const hashed = Buffer.concat([withRepeat, inner, mdcHeader]);
  const plain = Buffer.concat([hashed, createHash('sha1').update(hashed).digest()]);
  const c = createCipheriv(`aes-${KEY_SIZES[algorithm] * 8}-cfb`, key, Buffer.alloc(16));
  return Buffer.concat([c.update(plain), c.final()]);
}

/** A literal data packet (new format, one-octet or five-octet length). */
function literal(data: Uint8Array): Buffer {
  const body = Buffer.concat([Buffer.from([0x62, 0]), Buffer.alloc(4), data]); // binary, no name, time 0
  const len = body.length < 192 ? Buffer.from([body.length]) : Buffer.concat([Buffer.from([0xff]), Buffer.from(Uint32Array.of(body.length).buffer).reverse()]);
  return Buffer.concat([Buffer.from([0xc0 | 11]), len, body]);
}

async function decodeAll(algorithm: string, key: Uint8Array, body: Uint8Array): Promise<Buffer> {
  const d = new Seipd1Decoder(algorithm, key);
  const out: Buffer[] = [];
  for (const p of randomPieces(body)) d.update(p, out);
  d.final(out);
  return Buffer.concat(out);
}

describe('keys/pgp/seipd-v1', function () {
  this.timeout(60_000);

  it('CfbDecipher is OpenSSL\'s AES-CFB for every key size, whatever the chunking', () => {
    for (const [algorithm, size] of Object.entries(KEY_SIZES)) {
      for (let round = 0; round < 20; round++) {
        const key = randomBytes(size);
        const ct = randomBytes(randomInt(0, 200_000));
        const ref = createDecipheriv(`aes-${size * 8}-cfb`, key, Buffer.alloc(16));
        const want = Buffer.concat([ref.update(ct), ref.final()]);
        const ours = new CfbDecipher(algorithm, key);
        const got = Buffer.concat([...randomPieces(ct).map((p) => ours.update(p)), ours.final()]);
        expect(got.equals(want), `${algorithm}, ${ct.length} octets`).to.equal(true);
      }
    }
  });

  it('takes AES session keys of the right size only (anything else stays with openpgp)', () => {
    expect(fastPathTakes({ algorithm: 'aes256', data: new Uint8Array(32) })).to.equal(true);
    expect(fastPathTakes({ algorithm: 'aes128', data: new Uint8Array(16) })).to.equal(true);
    expect(fastPathTakes({ algorithm: 'aes256', data: new Uint8Array(16) })).to.equal(false);
    expect(fastPathTakes({ algorithm: 'camellia256', data: new Uint8Array(32) })).to.equal(false);
    expect(fastPathTakes({ algorithm: null, data: new Uint8Array(32) })).to.equal(false);
  });

  it('a hand-made body decodes to its inner packets; every damage is pgp.integrity', async () => {
    const key = randomBytes(32);
    const inner = literal(randomBytes(50_000));
    const body = sealByHand('aes256', key, inner);
    expect((await decodeAll('aes256', key, body)).equals(inner)).to.equal(true);
    const damaged: [string, Buffer][] = [
      ['a flipped bit in the prefix', Buffer.from(body)],
      ['a flipped bit in the middle', Buffer.from(body)],
      ['a flipped bit in the MDC', Buffer.from(body)],
      ['truncated by one octet', body.subarray(0, body.length - 1)],
      ['truncated to 30 octets', body.subarray(0, 30)],
      ['empty', body.subarray(0, 0)],
      ['wrong MDC header, right hash', sealByHand('aes256', key, inner, Buffer.from([0xd3, 0x15]))],
      ['wrong key', body],
    ];
    damaged[0]![1][3] ^= 1;
    damaged[1]![1][25_000] ^= 1;
    damaged[2]![1][body.length - 5] ^= 1;
    for (const [what, bytes] of damaged) {
      const k = what === 'wrong key' ? randomBytes(32) : key;
      const err = await decodeAll('aes256', k, bytes).then(() => null, (e: unknown) => e);
      expect(isPgwError(err) && err.code, what).to.equal('pgp.integrity');
    }
  });

  describe('against openpgp.js on real SEIPD v1 messages', () => {
    let gw: TestKeyPair;
    let signer: TestKeyPair;
    before(async () => {
      [gw, signer] = await Promise.all([genEccKey(), genEccKey()]);
    });

    /** A signed message encrypted with a known session key; its SEIPD body as bytes. */
    async function make(algorithm: keyof typeof KEY_SIZES, plain: Uint8Array, compress: 'zip' | 'zlib' | false = false) {
      const sessionKey = { data: randomBytes(KEY_SIZES[algorithm]), algorithm };
      const bytes = await openpgp.encrypt({
        message: await openpgp.createMessage({ binary: plain }), encryptionKeys: gw.publicKey, signingKeys: signer.privateKey,
        sessionKey, format: 'binary',
        config: { aeadProtect: false, ...(compress ? { preferredCompressionAlgorithm: openpgp.enums.compression[compress] } : {}) },
      });
      const m = await openpgp.readMessage({ binaryMessage: bytes });
      const seipd = m.packets.findPacket(openpgp.enums.packet.symEncryptedIntegrityProtectedData) as unknown as
        { version: number; encrypted: Uint8Array | ReadableStream<Uint8Array> };
      expect(seipd.version).to.equal(1);
      const body = seipd.encrypted instanceof Uint8Array ? seipd.encrypted : await readAll(seipd.encrypted);
      expect(body.length).to.be.greaterThan(plain.length / (compress ? 2 : 1));
      return { bytes, sessionKey, body };
    }

    /** What our layer + openpgp.verify make of a body: the literal data, or the error code. */
    async function ours(sessionKey: { data: Uint8Array; algorithm: string }, body: Uint8Array, maxInflated = CONFIG.maxDecompressedMessageSize!): Promise<Buffer | string> {
      const s = new Seipd1Stream(streamOf(randomPieces(body)), sessionKey, maxInflated);
      try {
        const message = await openpgp.readMessage({ binaryMessage: s.plaintext, config: CONFIG });
        const v = await openpgp.verify({ message, verificationKeys: signer.publicKey, format: 'binary', config: CONFIG });
        const data = await readAll(v.data as ReadableStream<Uint8Array>);
        for (const sig of v.signatures) await sig.verified;
        return data;
      } catch {
        await s.settle(); // as the decrypt stage does: the MDC's verdict comes first
        return s.failure?.code ?? 'openpgp error';
      }
    }

    /** openpgp's own decryption with the same session key (no key-preference check in the way). */
    async function theirs(bytes: Uint8Array, sessionKey: openpgp.SessionKey): Promise<Buffer | string> {
      try {
        const message = await openpgp.readMessage({ binaryMessage: bytes, config: CONFIG });
        const d = await openpgp.decrypt({ message, sessionKeys: sessionKey, verificationKeys: signer.publicKey, format: 'binary', config: CONFIG });
        for (const sig of d.signatures) await sig.verified;
        return Buffer.from(d.data as Uint8Array);
      } catch {
        return 'rejected';
      }
    }

    it('same plaintext as openpgp for every AES size, uncompressed, zip or zlib', async () => {
      for (const algorithm of Object.keys(KEY_SIZES) as (keyof typeof KEY_SIZES)[]) {
        for (const compress of [false, 'zip', 'zlib'] as const) {
          const plain = randomBytes(randomInt(1, 300_000));
          const { bytes, sessionKey, body } = await make(algorithm, plain, compress);
          const a = await ours(sessionKey, body);
          expect(Buffer.isBuffer(a) && a.equals(plain), `${algorithm} ${compress || ''}: ${String(a).slice(0, 40)}`).to.equal(true);
          expect((await theirs(bytes, sessionKey) as Buffer).equals(plain)).to.equal(true);
        }
      }
    });

    it('a flipped bit anywhere in the body: openpgp rejects, and so do we (pgp.integrity first)', async () => {
      const plain = randomBytes(20_000);
      const { bytes, sessionKey, body } = await make('aes256', plain);
      const bodyAt = Buffer.from(bytes).indexOf(Buffer.from(body.subarray(0, 32)));
      expect(bodyAt).to.be.greaterThan(0);
      for (let k = 0; k < 30; k++) {
        const off = k < 3 ? k * 7 : randomInt(body.length);
        const b = Uint8Array.from(body);
        b[off] ^= 1 << randomInt(8);
        const whole = Uint8Array.from(bytes);
        whole[bodyAt + off] = b[off]!;
        expect(await theirs(whole, sessionKey), `openpgp, offset ${off}`).to.equal('rejected');
        expect(await ours(sessionKey, b), `ours, offset ${off}`).to.equal('pgp.integrity');
      }
    });

    /** A compressed data packet (old format, to the end, as GnuPG writes it) around `inner`. */
    const compressed = (inner: Buffer, algo: 1 | 2 = 2, deflated = algo === 2 ? deflateSync(inner) : deflateRawSync(inner)) =>
      Buffer.concat([Buffer.from([0x80 | (8 << 2) | 3, algo]), deflated]);
    /** Signed `plain` as openpgp packets (one-pass signature, literal, signature), uncompressed. */
    const signedPackets = async (plain: Uint8Array): Promise<Buffer> => Buffer.from(await openpgp.sign({
      message: await openpgp.createMessage({ binary: plain }), signingKeys: signer.privateKey, format: 'binary',
      config: { preferredCompressionAlgorithm: openpgp.enums.compression.uncompressed },
    }) as Uint8Array);

    it('a compressed packet inflated by zlib: GnuPG framing, zip and zlib, same plaintext; its limits and its grammar', async () => {
      const key = randomBytes(32);
      const sk = { data: key, algorithm: 'aes256' };
      const plain = Buffer.from(JSON.stringify(Array.from({ length: 20_000 }, (_, i) => ({ i, bsn: '000000000' }))));
      const signed = await signedPackets(plain);
      for (const algo of [1, 2] as const) {
        const got = await ours(sk, sealByHand('aes256', key, compressed(signed, algo)));
        expect(Buffer.isBuffer(got) && got.equals(plain), `algorithm ${algo}: ${String(got).slice(0, 60)}`).to.equal(true);
      }
      // more than maxDecompressedMessageSize inflates: the limit's code, as openpgp's own bound gives
      expect(await ours(sk, sealByHand('aes256', key, compressed(signed)), plain.length / 2)).to.equal('limits.decompressed_size');
      // a second compression layer inside: openpgp allows only literal and signature packets there
      expect(await ours(sk, sealByHand('aes256', key, compressed(compressed(signed))))).to.equal('pgp.malformed');
      // a cut deflate stream (the MDC intact): malformed
      const whole = compressed(signed);
      expect(await ours(sk, sealByHand('aes256', key, whole.subarray(0, whole.length - 100)))).to.equal('pgp.malformed');
      // a packet after a definite-length compressed packet
      const body = Buffer.concat([Buffer.from([2]), deflateSync(signed)]);
      const definite = Buffer.concat([Buffer.from([0xc0 | 8, 0xff]), Buffer.from(Uint32Array.of(body.length).buffer).reverse(), body]);
      expect(Buffer.isBuffer(await ours(sk, sealByHand('aes256', key, definite)))).to.equal(true);
      expect(await ours(sk, sealByHand('aes256', key, Buffer.concat([definite, literal(Buffer.from('x'))])))).to.equal('pgp.malformed');
      // damage inside the deflate stream: the MDC's verdict comes first
      const damaged = sealByHand('aes256', key, whole);
      damaged[damaged.length - 500] ^= 1;
      expect(await ours(sk, damaged)).to.equal('pgp.integrity');
    });

    it('a packet not allowed inside (intact MDC): both reject, ours as pgp.malformed', async () => {
      const key = randomBytes(32);
      // A public-key session-key packet (tag 1) before a literal: openpgp.readMessage alone would take it.
      const pkesk = Buffer.from([0xc0 | 1, 3, 3, 0, 0]);
      const body = sealByHand('aes256', key, Buffer.concat([pkesk, literal(Buffer.from('x'))]));
      expect(await ours({ data: key, algorithm: 'aes256' }, body)).to.equal('pgp.malformed');
      // openpgp's own SEIPD decryption of the same inner bytes refuses it too
      const seipd = new openpgp.SymEncryptedIntegrityProtectedDataPacket() as unknown as { read(b: Uint8Array): Promise<void>; decrypt(a: number, k: Uint8Array, c: unknown): Promise<void> };
      await seipd.read(Buffer.concat([Buffer.from([1]), body]));
      const err = await seipd.decrypt(openpgp.enums.symmetric.aes256, key, { ...openpgp.config, ...CONFIG }).then(() => null, (e: unknown) => e);
      expect(String(err)).to.match(/not allowed/);
    });
  });
});
