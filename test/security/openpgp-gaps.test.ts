// test-pass: once
/**
 * The OpenPGP checklist items test/unit/workers/decrypt-stage.test.ts does not reach:
 * signatures of the standalone and timestamp types (they sign no data, so accepting one
 * would let anyone attach a partner's old signature to any content), Argon2 SKESKs with
 * absurd cost parameters (a memory-hard KDF the gateway must never run), and huge user ids
 * (in a message, and in a key offered for registration). Real decrypt stage, real ledger,
 * sealed blobs and queues (test/helpers/pgp-fixtures.ts).
 */
import { expect } from 'chai';
import { openpgp } from '../../keys/pgp/openpgp-lib.js';
import { createStageFixture, genEccKey, type StageFixture } from '../helpers/pgp-fixtures.js';
import { runDecryptStage } from '../../workers/decrypt-stage.js';
import { addPartnerKey } from '../../keys/partner-keys.js';
import { PgwError } from '../../gateway/core/errors.js';

const PLAIN = new TextEncoder().encode('{"schema":"x","records":[{"note":"forged content"}]}');
const STALL_MS = 1500;

async function decide(fx: StageFixture, bytes: Uint8Array): Promise<{ id: string; stage: string; code: string | null; ms: number; rssGrowth: number }> {
  const id = await fx.spool(bytes);
  const rss0 = process.memoryUsage().rss;
  const t0 = Date.now();
  await runDecryptStage(fx.ctx, id, { stallMs: STALL_MS });
  const b = await fx.batch(id);
  return { id, stage: b.stage, code: b.error_code, ms: Date.now() - t0, rssGrowth: process.memoryUsage().rss - rss0 };
}

async function expectRejectedNothingReleased(fx: StageFixture, id: string, label: string): Promise<void> {
  const b = await fx.batch(id);
  expect({ stage: b.stage, outcome: b.outcome }, label).to.deep.equal({ stage: 'ack', outcome: 'rejected' });
  expect(b.signer_fingerprint, `${label}: no signer`).to.equal(null);
  expect(await fx.payloadExists(id), `${label}: no payload promoted`).to.equal(false);
  expect(await fx.quarantineEntries(), `${label}: quarantine empty`).to.deep.equal([]);
  expect(await fx.queues.hasLiveJob('validate', id), `${label}: nothing enqueued for parsing`).to.equal(false);
}

/** [Signature, Literal] (a signed message without one-pass packet) with a signature of `type` by `key`. */
async function signedMessage(key: openpgp.PrivateKey, type: openpgp.enums.signature): Promise<openpgp.Message<Uint8Array>> {
  const keyPacket = key.keyPacket as unknown as openpgp.SecretKeyPacket;
  const literal = new openpgp.LiteralDataPacket();
  (literal as unknown as { setBytes(b: Uint8Array, f: openpgp.enums.literal): void }).setBytes(PLAIN, openpgp.enums.literal.binary);
  const sig = new openpgp.SignaturePacket();
  sig.signatureType = type;
  sig.publicKeyAlgorithm = keyPacket.algorithm;
  sig.hashAlgorithm = openpgp.enums.hash.sha256;
  await (sig as unknown as { sign(k: unknown, d: unknown, date: Date, detached: boolean, c: unknown): Promise<void> })
    .sign(keyPacket, literal, new Date(Date.now() - 60_000), false, openpgp.config);
  const list = new openpgp.PacketList<openpgp.AnyPacket>();
  list.push(sig as unknown as openpgp.AnyPacket);
  list.push(literal as unknown as openpgp.AnyPacket);
  return new openpgp.Message(list as never) as openpgp.Message<Uint8Array>;
}

/** Offset of the first top-level packet with `tag` and the offset of its body (new-format headers). */
function findPacket(b: Uint8Array, tag: number): { start: number; body: number } {
  let i = 0;
  while (i < b.length) {
    const h = b[i]!;
    if ((h & 0xc0) !== 0xc0) throw new Error('expected new-format packet headers');
    const t = h & 0x3f;
    const l = b[i + 1]!;
    let body: number;
    let len: number;
    if (l < 192) [body, len] = [i + 2, l];
    else if (l < 224) [body, len] = [i + 3, ((l - 192) << 8) + b[i + 2]! + 192];
    else if (l === 255) [body, len] = [i + 6, Buffer.from(b).readUInt32BE(i + 2)];
    else throw new Error('partial length before the packet looked for');
    if (t === tag) return { start: i, body };
    i = body + len;
  }
  throw new Error(`no packet with tag ${tag}`);
}

describe('security: OpenPGP gaps (signature types, Argon2 SKESK, huge user ids)', function () {
  this.timeout(60_000);
  let fx: StageFixture;

  before(async () => {
    fx = await createStageFixture({ queuePrefix: 'pgwt-security-pgp' });
  });
  after(async () => {
    await fx?.close();
  });

  it("standalone and timestamp signatures by the partner's real key sign nothing: rejected, nothing released (a binary one, same shape, passes)", async () => {
    const control = await decide(fx, await openpgp.encrypt({
      message: await signedMessage(fx.partnerKey.privateKey, openpgp.enums.signature.binary), encryptionKeys: fx.gatewayPublic, format: 'binary',
    }));
    expect({ stage: control.stage, code: control.code }, 'control: a document signature in the same shape').to.deep.equal({ stage: 'validate', code: null });
    for (const [label, type] of [['standalone', openpgp.enums.signature.standalone], ['timestamp', openpgp.enums.signature.timestamp]] as const) {
      const bytes = await openpgp.encrypt({ message: await signedMessage(fx.partnerKey.privateKey, type), encryptionKeys: fx.gatewayPublic, format: 'binary' });
      const r = await decide(fx, bytes);
      await expectRejectedNothingReleased(fx, r.id, label);
      expect(r.code, label).to.be.oneOf(['signature.missing', 'signature.invalid', 'pgp.malformed']);
    }
  });

  it('an Argon2 SKESK with absurd cost (2^30 KiB, 255 passes, 255 lanes) is never run: decided in bounded time and memory', async () => {
    const message = await openpgp.createMessage({ binary: PLAIN });
    const make = async (withKey: boolean, aeadProtect: boolean): Promise<Uint8Array> => {
      const config: openpgp.PartialConfig = {
        s2kType: openpgp.enums.s2k.argon2, s2kArgon2Params: { passes: 1, parallelism: 1, memoryExponent: 10 }, aeadProtect,
      };
      const bytes = withKey
        ? await openpgp.encrypt({ message, passwords: ['partner-password'], encryptionKeys: fx.gatewayPublic, signingKeys: fx.partnerKey.privateKey, format: 'binary', config })
        : await openpgp.encrypt({ message, passwords: ['partner-password'], signingKeys: fx.partnerKey.privateKey, format: 'binary', config });
      // Raise the cost in the SKESK (its S2K parameters are not integrity protected): t, p, m
      // follow the 16-byte salt.
      const msg = await openpgp.readMessage({ binaryMessage: bytes });
      const skesk = msg.packets.find((p) => p instanceof openpgp.SymEncryptedSessionKeyPacket) as unknown as { s2k: { salt: Uint8Array } };
      const { body } = findPacket(bytes, 3);
      const at = Buffer.from(bytes).indexOf(Buffer.from(skesk.s2k.salt), body) + 16;
      expect(at).to.be.greaterThan(16);
      const out = Uint8Array.from(bytes);
      out[at] = 255;
      out[at + 1] = 255;
      out[at + 2] = 30;
      const check = (await openpgp.readMessage({ binaryMessage: out })).packets.find((p) => p instanceof openpgp.SymEncryptedSessionKeyPacket) as unknown as { s2k: { t: number; p: number; encodedM: number } };
      expect([check.s2k.t, check.s2k.p, check.s2k.encodedM]).to.deep.equal([255, 255, 30]);
      return out;
    };
    for (const aead of [false, true]) {
      // Also encrypted to the gateway key: decrypted with the key, the password packet is ignored.
      const both = await decide(fx, await make(true, aead));
      expect(both.ms, `aead=${aead}: time`).to.be.below(5000);
      expect(both.rssGrowth, `aead=${aead}: memory`).to.be.below(256 * 1024 * 1024);
      expect({ stage: both.stage, code: both.code }, `aead=${aead}: decrypted with the gateway key`).to.deep.equal({ stage: 'validate', code: null });
      // Password only: there is nothing for the gateway, and no password is ever tried.
      const only = await decide(fx, await make(false, aead));
      expect(only.ms, `aead=${aead}: time`).to.be.below(5000);
      expect(only.rssGrowth, `aead=${aead}: memory`).to.be.below(256 * 1024 * 1024);
      await expectRejectedNothingReleased(fx, only.id, `aead=${aead}, password only`);
      expect(only.code).to.equal('pgp.not_encrypted');
    }
  });

  it('a 64 KiB user id packet inside a signed message is rejected; a key with a 1 MiB user id is not registered', async () => {
    const uid = openpgp.UserIDPacket.fromObject({ name: `x${'y'.repeat(64 * 1024)}`, email: 'huge@example.invalid' });
    const signed = await signedMessage(fx.partnerKey.privateKey, openpgp.enums.signature.binary);
    const list = new openpgp.PacketList<openpgp.AnyPacket>();
    list.push(uid as unknown as openpgp.AnyPacket);
    for (const p of signed.packets) list.push(p);
    const bytes = await openpgp.encrypt({ message: new openpgp.Message(list as never) as openpgp.Message<Uint8Array>, encryptionKeys: fx.gatewayPublic, format: 'binary' });
    const r = await decide(fx, bytes);
    await expectRejectedNothingReleased(fx, r.id, 'user id packet in a message');
    expect(r.code).to.equal('pgp.malformed');
    expect(r.ms).to.be.below(5000);

    const huge = await openpgp.generateKey({ type: 'ecc', curve: 'curve25519Legacy', userIDs: [{ name: 'h'.repeat(1024 * 1024), email: 'huge@example.invalid' }], format: 'armored' });
    const pub = (await openpgp.readKey({ armoredKey: huge.publicKey, config: { maxUserIDLength: 2 * 1024 * 1024 } })).armor();
    await fx.addPartner('p-huge');
    const rss0 = process.memoryUsage().rss;
    let err: unknown = null;
    try {
      await addPartnerKey(fx.ledger, 'p-huge', pub);
    } catch (e) {
      err = e;
    }
    expect(err).to.be.instanceOf(PgwError);
    expect((err as PgwError).code).to.equal('key.invalid');
    expect(process.memoryUsage().rss - rss0).to.be.below(256 * 1024 * 1024);
    expect(await fx.ledger.pgpKeys.partnerKeys('p-huge')).to.deep.equal([]);
    // Control: the same partner can register an ordinary key.
    await addPartnerKey(fx.ledger, 'p-huge', (await genEccKey({ name: 'Ordinary' })).armoredPublic);
  });
});
