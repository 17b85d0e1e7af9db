// test-pass: once
/**
 * keys/pgp/pgp-errors: openpgp 6.3's error texts → our codes. Every input is an error that
 * openpgp really throws for a really malformed message (made here), so an upgrade that
 * changes a text fails a test instead of silently changing a code. Codes only: message
 * texts are not asserted.
 */
import { expect } from 'chai';
import { promises as fsp } from 'node:fs';
import { openpgp } from '../../../../keys/pgp/openpgp-lib.js';
import { mapOpenpgpError } from '../../../../keys/pgp/pgp-errors.js';
import { PgwError, isPgwError } from '../../../../gateway/core/errors.js';
import { openpgpConfig } from '../../../../keys/pgp/openpgp-policy.js';
import { genEccKey, DAY, type TestKeyPair } from '../../../helpers/pgp-fixtures.js';

const CONFIG = openpgpConfig({ decompressedBytes: 1024 * 1024 });
const enc = (s: string) => new TextEncoder().encode(s);

/** The error `fn` throws (or the rejection of the promise it returns). */
async function errorOf(fn: () => Promise<unknown>): Promise<unknown> {
  try {
    await fn();
  } catch (e) {
    return e;
  }
  throw new Error('expected an error');
}

function codeOf(mapped: unknown): string {
  return isPgwError(mapped) ? mapped.code : `not a PgwError: ${String(mapped)}`;
}

async function decryptAll(bytes: Uint8Array, key: TestKeyPair, config = CONFIG, verificationKeys?: openpgp.PublicKey[]) {
  const message = await openpgp.readMessage({ binaryMessage: bytes, config });
  const out = await openpgp.decrypt({ message, decryptionKeys: key.privateKey, format: 'binary', config, ...(verificationKeys ? { verificationKeys } : {}) });
  for (const s of out.signatures) await s.verified;
  return out;
}

describe('keys/pgp/pgp-errors (real openpgp errors)', function () {
  this.timeout(30_000);
  let gw: TestKeyPair;
  let signer: TestKeyPair;
  before(async () => {
    [gw, signer] = await Promise.all([genEccKey({ date: new Date(Date.now() - 30 * DAY) }), genEccKey({ date: new Date(Date.now() - 30 * DAY) })]);
  });

  /** Signed by `signer`, encrypted to `gw`; `date` back- or forward-dates the signature. */
  const encryptTo = async (plain: Uint8Array, o: { date?: Date; config?: openpgp.PartialConfig } = {}): Promise<Uint8Array> =>
    openpgp.encrypt({
      message: await openpgp.createMessage({ binary: plain }), encryptionKeys: gw.publicKey, signingKeys: signer.privateKey,
      format: 'binary', date: o.date, config: o.config,
    });

  it('our own errors pass through unchanged', () => {
    const e = new PgwError('limits.decompression_ratio');
    expect(mapOpenpgpError(e)).to.equal(e);
  });

  it('system errors (a real ENOENT) are returned unchanged, so the job is retried', async () => {
    const e = await errorOf(() => fsp.open('/nonexistent/pgw/spool.pgp', 'r'));
    expect(mapOpenpgpError(e)).to.equal(e);
    // an error with a code but no syscall is not a system error
    const notSys = Object.assign(new Error('weird'), { code: 'X' });
    expect(codeOf(mapOpenpgpError(notSys))).to.equal('pgp.malformed');
  });

  it('anything unknown → the fallback (pgp.malformed, or the one given)', () => {
    expect(codeOf(mapOpenpgpError('a string'))).to.equal('pgp.malformed');
    expect(codeOf(mapOpenpgpError(new Error('something new'), 'signature.invalid'))).to.equal('signature.invalid');
  });

  it('garbage → pgp.malformed', async () => {
    const e = await errorOf(() => openpgp.readMessage({ binaryMessage: enc('plain text, not a message'), config: CONFIG }));
    expect(codeOf(mapOpenpgpError(e))).to.equal('pgp.malformed');
  });

  it('encrypted to another key → decrypt.no_key', async () => {
    const other = await genEccKey();
    const bytes = await encryptTo(enc('x'));
    const e = await errorOf(() => decryptAll(bytes, other));
    expect(codeOf(mapOpenpgpError(e))).to.equal('decrypt.no_key');
  });

  it('a damaged wrapped session key (ECDH key wrap) → pgp.integrity, from decrypt and from decryptSessionKeys', async () => {
    const bytes = Uint8Array.from(await encryptTo(enc('x')));
    // The PKESK comes first; its last octet is the last octet of the AES-wrapped session key.
    const pkeskEnd = 2 + bytes[1]!;
    expect(bytes[0]! & 0x3f).to.equal(openpgp.enums.packet.publicKeyEncryptedSessionKey);
    bytes[pkeskEnd - 1] ^= 0x01;
    const e = await errorOf(() => decryptAll(bytes, gw));
    expect(String((e as Error).message)).to.match(/Key Data Integrity failed/);
    expect(codeOf(mapOpenpgpError(e))).to.equal('pgp.integrity');
    const message = await openpgp.readMessage({ binaryMessage: bytes, config: CONFIG });
    const e2 = await errorOf(() => openpgp.decryptSessionKeys({ message, decryptionKeys: gw.privateKey, config: CONFIG }));
    expect(codeOf(mapOpenpgpError(e2))).to.equal('pgp.integrity');
  });

  it('a modified SEIPD body → pgp.integrity', async () => {
    const bytes = Uint8Array.from(await encryptTo(new Uint8Array(4096)));
    bytes[bytes.length - 10] ^= 0x01;
    const e = await errorOf(() => decryptAll(bytes, gw));
    expect(codeOf(mapOpenpgpError(e))).to.equal('pgp.integrity');
  });

  it('a wrong armor checksum alone is ignored by openpgp 6 (integrity comes from the MDC)', async () => {
    const binary = await encryptTo(new Uint8Array(64));
    const withSum = openpgp.armor(openpgp.enums.armor.message, binary, undefined, undefined, undefined, true);
    const bad = withSum.replace(/\n=(....)\n/, (_m, sum: string) => `\n=${sum[0] === 'A' ? 'B' : 'A'}${sum.slice(1)}\n`);
    expect(bad).to.not.equal(withSum);
    const m = await openpgp.readMessage({ armoredMessage: bad, config: CONFIG });
    const out = await openpgp.decrypt({ message: m, decryptionKeys: gw.privateKey, format: 'binary', config: CONFIG });
    expect((out.data as Uint8Array).length).to.equal(64);
  });

  it('an SE (no MDC) packet → pgp.no_integrity_protection', async () => {
    const sk = await openpgp.generateSessionKey({ encryptionKeys: gw.publicKey });
    const se = new openpgp.SymmetricallyEncryptedDataPacket() as unknown as { packets: unknown; encrypt(a: number, k: Uint8Array): Promise<void> };
    se.packets = (await openpgp.createMessage({ binary: enc('x') })).packets;
    await se.encrypt(openpgp.enums.symmetric[sk.algorithm as keyof typeof openpgp.enums.symmetric], sk.data);
    const pkesk = await openpgp.encryptSessionKey({ ...sk, encryptionKeys: gw.publicKey, format: 'object' });
    const list = new openpgp.PacketList<openpgp.AnyPacket>();
    list.push(...pkesk.packets, se as unknown as openpgp.AnyPacket);
    const e = await errorOf(() => decryptAll(list.write(), gw));
    expect(codeOf(mapOpenpgpError(e))).to.equal('pgp.no_integrity_protection');
  });

  it('over maxDecompressedMessageSize → limits.decompressed_size', async () => {
    const bytes = await encryptTo(new Uint8Array(4 * 1024 * 1024), { config: { preferredCompressionAlgorithm: openpgp.enums.compression.zlib } });
    const e = await errorOf(() => decryptAll(bytes, gw));
    expect(codeOf(mapOpenpgpError(e))).to.equal('limits.decompressed_size');
  });

  describe('signature errors (mapped with fallback signature.invalid, as the stage does)', () => {
    const verifyError = async (bytes: Uint8Array, key: openpgp.PublicKey, config = CONFIG) =>
      errorOf(() => decryptAll(bytes, gw, config, [key]));

    it('a hash algorithm on the reject list → signature.weak_hash', async () => {
      const bytes = await encryptTo(enc('x'));
      const strict = { ...CONFIG, rejectMessageHashAlgorithms: new Set([...CONFIG.rejectMessageHashAlgorithms!, openpgp.enums.hash.sha512, openpgp.enums.hash.sha256]) };
      expect(codeOf(mapOpenpgpError(await verifyError(bytes, signer.publicKey, strict), 'signature.invalid'))).to.equal('signature.weak_hash');
    });

    it('a signature from the future → signature.future', async () => {
      const bytes = await encryptTo(enc('x'), { date: new Date(Date.now() + DAY) });
      expect(codeOf(mapOpenpgpError(await verifyError(bytes, signer.publicKey), 'signature.invalid'))).to.equal('signature.future');
    });

    it('a key expired at signature time → key.expired', async () => {
      const bytes = await encryptTo(enc('x'), { date: new Date(Date.now() - DAY) });
      const expiring = await openpgp.reformatKey({
        privateKey: signer.privateKey, userIDs: [{ name: 'x' }], keyExpirationTime: 24 * 3600, date: new Date(Date.now() - 30 * DAY), format: 'object',
      });
      expect(codeOf(mapOpenpgpError(await verifyError(bytes, expiring.publicKey), 'signature.invalid'))).to.equal('key.expired');
    });

    it('a signer key that is not among the verification keys → the fallback', async () => {
      const bytes = await encryptTo(enc('x'));
      const other = await genEccKey();
      // openpgp reports an unknown signer; the stage never gets here (it checks the key id first)
      expect(codeOf(mapOpenpgpError(await verifyError(bytes, other.publicKey), 'signature.invalid'))).to.equal('signature.invalid');
    });
  });
});
