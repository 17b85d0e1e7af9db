// test-pass: once
/**
 * The decrypt/verify stage end to end on a real ledger, real sealed blobs and real BullMQ
 * queues: every message is made at test time by openpgp.js or GnuPG.
 *
 * For a rejection we assert the exact code, that the batch moved to `ack` with an ack job,
 * that no payload was promoted and that nothing remains in quarantine.
 */
import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { Writable } from 'node:stream';
import { openpgp } from '../../../keys/pgp/openpgp-lib.js';
import {
  createStageFixture, genEccKey, rsaKey, GpgHome, openpgpSignEncrypt, openpgpSignOnly, DAY,
  type StageFixture, type TestKeyPair,
} from '../../helpers/pgp-fixtures.js';
import { runDecryptStage } from '../../../workers/decrypt-stage.js';
import { readSealedAll } from '../../../gateway/core/sealed-blob.js';
import { shortFingerprint } from '../../../keys/pgp/pgp-inspect.js';
import type { ErrorCode } from '../../../gateway/core/errors.js';
import { createLogger } from '../../../gateway/core/logger.js';

const enc = (s: string) => new TextEncoder().encode(s);
const PLAIN = enc(JSON.stringify({ schema: 'test', records: [{ ref: 'r-1', note: 'plaintext canary 7f3a' }] }));

/** Offset of the header byte of the first top-level packet with `tag` (binary OpenPGP). */
function packetOffset(b: Uint8Array, tag: number): number {
  let i = 0;
  while (i < b.length) {
    const h = b[i]!;
    if (!(h & 0x80)) throw new Error('not a packet header');
    let t: number;
    let body: number;
    let len: number | null;
    if (h & 0x40) {
      t = h & 0x3f;
      const l = b[i + 1]!;
      if (l < 192) [body, len] = [i + 2, l];
      else if (l < 224) [body, len] = [i + 3, ((l - 192) << 8) + b[i + 2]! + 192];
      else if (l === 255) [body, len] = [i + 6, Buffer.from(b).readUInt32BE(i + 2)];
      else [body, len] = [i + 2, null]; // partial length: must be the last top-level packet
    } else {
      t = (h >> 2) & 0x0f;
      const lt = h & 3;
      const n = lt === 0 ? 1 : lt === 1 ? 2 : lt === 2 ? 4 : 0;
      body = i + 1 + n;
      len = n === 0 ? null : Buffer.from(b).readUIntBE(i + 1, n);
    }
    if (t === tag) return i;
    if (len === null) break;
    i = body + len;
  }
  throw new Error(`no packet with tag ${tag}`);
}

/** Offsets 0 … len-1 spread evenly (n of them), shifted by `shift` of a step. */
function spread(len: number, n: number, shift = 0): number[] {
  return Array.from({ length: n }, (_, k) => Math.min(len - 1, Math.floor(((k + shift) * (len - 1)) / (n - 1 + shift))));
}

/** openpgp may stall on some malformed messages; the stage gives up after this (30 s in production). */
const STALL_MS = 1500;

/** Spool the bytes as `partnerId`, run the stage (it must not throw), return the batch id. */
async function process(fx: StageFixture, bytes: Uint8Array, partnerId = 'p1'): Promise<string> {
  const id = await fx.spool(bytes, partnerId);
  await runDecryptStage(fx.ctx, id, { stallMs: STALL_MS });
  return id;
}

async function expectRejected(fx: StageFixture, id: string, code: ErrorCode): Promise<Record<string, unknown>> {
  const b = await fx.batch(id);
  expect({ stage: b.stage, outcome: b.outcome, code: b.error_code }, `batch ${id}`).to.deep.equal({ stage: 'ack', outcome: 'rejected', code });
  expect(b.signer_fingerprint, 'no signer recorded on rejection').to.equal(null);
  expect(await fx.payloadExists(id), 'no payload on rejection').to.equal(false);
  expect(await fx.quarantineEntries(), 'quarantine empty').to.deep.equal([]);
  expect(await fx.queues.hasLiveJob('ack', id), 'ack job queued').to.equal(true);
  expect(await fx.queues.hasLiveJob('validate', id), 'no validate job').to.equal(false);
  return JSON.parse(b.error_detail ?? '{}') as Record<string, unknown>;
}

/** Rejected with any of `codes`; returns the code. Same invariants as {@link expectRejected}. */
async function expectRejectedAnyOf(fx: StageFixture, id: string, codes: ErrorCode[], label: string): Promise<string> {
  const b = await fx.batch(id);
  expect({ stage: b.stage, outcome: b.outcome }, label).to.deep.equal({ stage: 'ack', outcome: 'rejected' });
  expect(codes, `${label}: code ${b.error_code}`).to.include(b.error_code);
  expect(await fx.payloadExists(id), `${label}: no payload`).to.equal(false);
  expect(await fx.quarantineEntries(), `${label}: quarantine empty`).to.deep.equal([]);
  expect(await fx.queues.hasLiveJob('validate', id), `${label}: no validate job`).to.equal(false);
  return b.error_code!;
}

async function expectAdvanced(fx: StageFixture, id: string, plain: Uint8Array, signerFingerprint: string, signedAt = new Date()): Promise<void> {
  const b = await fx.batch(id);
  expect({ stage: b.stage, outcome: b.outcome, code: b.error_code }, `batch ${id} (${b.error_detail})`)
    .to.deep.equal({ stage: 'validate', outcome: null, code: null });
  expect(b.signer_fingerprint).to.equal(signerFingerprint);
  expect(b.signed_at, 'signed_at recorded').to.be.a('string');
  expect(Math.abs(Date.parse(b.signed_at!) - signedAt.getTime()), 'signed_at').to.be.below(60_000);
  expect(b.decrypt_key_fingerprint).to.equal(fx.gatewayRow.fingerprint);
  const payload = await readSealedAll(fx.dataDir.payloadFile(id), fx.dataKeys.unwrap(b.data_key!));
  expect(Buffer.compare(payload, Buffer.from(plain)), 'payload decrypts to the original bytes').to.equal(0);
  expect(await fx.quarantineEntries()).to.deep.equal([]);
  expect(await fx.queues.hasLiveJob('validate', id), 'validate job queued').to.equal(true);
  expect(await fx.queues.hasLiveJob('ack', id)).to.equal(false);
  const ev = (await fx.ledger.batches.events(id)).find((e) => e.stage === 'decrypt');
  expect(ev?.outcome).to.equal('ok');
}

describe('workers/decrypt-stage', function () {
  this.timeout(60_000);
  let fx: StageFixture;
  let gpg: GpgHome;
  let gpgEd: string; // fingerprint of a GnuPG Ed25519/Cv25519 key registered for p1
  let gpgRsa: string; // fingerprint of a GnuPG RSA-3072 key registered for p1
  let rsa: TestKeyPair; // an openpgp.js RSA-3072 key registered for p1
  let p2: TestKeyPair;
  let stranger: TestKeyPair; // registered nowhere

  before(async () => {
    fx = await createStageFixture({ queuePrefix: 'pgwt-decrypt' });
    gpg = await GpgHome.create();
    // The two gpg keys one after the other (two gpg at once in one home can read a keybox the
    // other is rewriting: "pubring.kbx: copy … failed: Invalid packet"); openpgp.js meanwhile.
    const gpgKeys = (async () => [
      await gpg.genKey('GPG Ed <gpg-ed@example.invalid>', 'future-default'),
      await gpg.genKey('GPG RSA <gpg-rsa@example.invalid>', 'rsa3072'),
    ])();
    [rsa, p2, stranger, [gpgEd, gpgRsa]] = await Promise.all([
      rsaKey(), genEccKey({ name: 'Partner Two' }), genEccKey({ name: 'Stranger' }), gpgKeys,
    ]);
    await fx.registerKey('p1', rsa.armoredPublic);
    await fx.registerKey('p1', await gpg.exportPublic(gpgEd));
    await fx.registerKey('p1', await gpg.exportPublic(gpgRsa));
    await fx.addPartner('p2');
    await fx.registerKey('p2', p2.armoredPublic);
    await gpg.importKey(fx.gatewayRow.public_armored);
  });

  after(async () => {
    await gpg?.close();
    await fx?.close();
  });

  const gw = () => [fx.gatewayPublic];
  const gpgSE = (plain: Uint8Array, signer: string, extra: string[] = []) => gpg.signEncrypt(plain, signer, fx.gatewayRow.fingerprint, extra);

  describe('valid messages from every toolchain round-trip to validate', () => {
    const cases: [string, () => Promise<{ bytes: Uint8Array; signer: string }>][] = [
      ['openpgp.js curve25519, binary', async () => ({
        bytes: await openpgpSignEncrypt(PLAIN, { signingKeys: [fx.partnerKey.privateKey], encryptionKeys: gw() }), signer: fx.partnerKey.fingerprint })],
      ['openpgp.js curve25519, armored', async () => ({
        bytes: await openpgpSignEncrypt(PLAIN, { signingKeys: [fx.partnerKey.privateKey], encryptionKeys: gw(), armor: true }), signer: fx.partnerKey.fingerprint })],
      ['openpgp.js curve25519, zlib-compressed', async () => ({
        bytes: await openpgpSignEncrypt(PLAIN, { signingKeys: [fx.partnerKey.privateKey], encryptionKeys: gw(), compression: openpgp.enums.compression.zlib }), signer: fx.partnerKey.fingerprint })],
      ['openpgp.js RSA-3072, armored, zlib', async () => ({
        bytes: await openpgpSignEncrypt(PLAIN, { signingKeys: [rsa.privateKey], encryptionKeys: gw(), armor: true, compression: openpgp.enums.compression.zlib }), signer: rsa.fingerprint })],
      ['gpg Ed25519, binary (default compression)', async () => ({ bytes: await gpgSE(PLAIN, gpgEd), signer: gpgEd })],
      ['gpg Ed25519, --armor', async () => ({ bytes: await gpgSE(PLAIN, gpgEd, ['--armor']), signer: gpgEd })],
      ['gpg Ed25519, -z 0', async () => ({ bytes: await gpgSE(PLAIN, gpgEd, ['-z', '0']), signer: gpgEd })],
      ['gpg RSA-3072, binary', async () => ({ bytes: await gpgSE(PLAIN, gpgRsa), signer: gpgRsa })],
      ['gpg RSA-3072, --armor -z 0', async () => ({ bytes: await gpgSE(PLAIN, gpgRsa, ['--armor', '-z', '0']), signer: gpgRsa })],
      ['gpg RSA-3072, --textmode (text signature)', async () => ({ bytes: await gpgSE(PLAIN, gpgRsa, ['--textmode']), signer: gpgRsa })],
      ['gpg Ed25519, --compress-algo zip', async () => ({ bytes: await gpgSE(PLAIN, gpgEd, ['--compress-algo', 'zip']), signer: gpgEd })],
      ['gpg Ed25519, --compress-algo zlib --armor', async () => ({ bytes: await gpgSE(PLAIN, gpgEd, ['--compress-algo', 'zlib', '--armor']), signer: gpgEd })],
      ['gpg Ed25519, --compress-algo bzip2', async () => ({ bytes: await gpgSE(PLAIN, gpgEd, ['--compress-algo', 'bzip2']), signer: gpgEd })],
      // SEIPD v1 with AES-128 and AES-256: the decrypt stage's own CFB layer (keys/pgp/seipd-v1.ts)
      ['gpg Ed25519, --cipher-algo AES128', async () => ({ bytes: await gpgSE(PLAIN, gpgEd, ['--cipher-algo', 'AES128']), signer: gpgEd })],
      ['gpg RSA-3072, --cipher-algo AES256 --compress-algo zlib -z 9', async () => ({
        bytes: await gpgSE(PLAIN, gpgRsa, ['--cipher-algo', 'AES256', '--compress-algo', 'zlib', '-z', '9']), signer: gpgRsa })],
    ];
    for (const [name, make] of cases) {
      it(name, async () => {
        const { bytes, signer } = await make();
        const id = await process(fx, bytes);
        await expectAdvanced(fx, id, PLAIN, signer);
      });
    }

    it('a 3 MiB gpg message compressed with zip (inflated by zlib in several slices) round-trips byte for byte', async () => {
      const text = Buffer.from(Array.from({ length: 60_000 }, (_, i) => `{"i":${i},"r":"${randomBytes(12).toString('hex')}"}`).join(',\n'));
      const id = await process(fx, await gpgSE(text, gpgEd, ['--compress-algo', 'zip']));
      await expectAdvanced(fx, id, text, gpgEd);
    });

    it('a 3 MiB gpg message (several sealed chunks) round-trips byte for byte', async () => {
      const big = randomBytes(3 * 1024 * 1024 + 17);
      const id = await process(fx, await gpgSE(big, gpgEd, ['-z', '0']));
      await expectAdvanced(fx, id, big, gpgEd);
    });

    it('a redelivered job for an advanced batch changes nothing and re-queues validate', async () => {
      const id = await process(fx, await openpgpSignEncrypt(enc('redelivery'), { signingKeys: [fx.partnerKey.privateKey], encryptionKeys: gw() }));
      await fx.queues.removeJob('validate', id);
      await runDecryptStage(fx.ctx, id, { stallMs: STALL_MS });
      await expectAdvanced(fx, id, enc('redelivery'), fx.partnerKey.fingerprint);
    });
  });

  describe('signatures', () => {
    it('unsigned → signature.missing', async () => {
      await expectRejected(fx, await process(fx, await openpgpSignEncrypt(PLAIN, { encryptionKeys: gw() })), 'signature.missing');
    });

    it('gpg --encrypt without --sign → signature.missing', async () => {
      const bytes = (await gpg.run(['--recipient', fx.gatewayRow.fingerprint, '--encrypt', '--output', '-'], PLAIN)).stdout;
      await expectRejected(fx, await process(fx, bytes), 'signature.missing');
    });

    it('signed by an unknown key → signature.unknown_key', async () => {
      const id = await process(fx, await openpgpSignEncrypt(PLAIN, { signingKeys: [stranger.privateKey], encryptionKeys: gw() }));
      const detail = await expectRejected(fx, id, 'signature.unknown_key');
      expect(detail.keyId).to.equal(stranger.privateKey.getKeyID().toHex());
    });

    it("signed by another registered partner's real key → signature.unknown_key (and the same bytes are fine for p2)", async () => {
      const bytes = await openpgpSignEncrypt(PLAIN, { signingKeys: [p2.privateKey], encryptionKeys: gw() });
      await expectRejected(fx, await process(fx, bytes, 'p1'), 'signature.unknown_key');
      await expectAdvanced(fx, await process(fx, bytes, 'p2'), PLAIN, p2.fingerprint);
    });

    it('one good + one unregistered signature → rejected (both signing orders)', async () => {
      for (const keys of [[fx.partnerKey.privateKey, stranger.privateKey], [stranger.privateKey, fx.partnerKey.privateKey]]) {
        const id = await process(fx, await openpgpSignEncrypt(PLAIN, { signingKeys: keys, encryptionKeys: gw() }));
        await expectRejected(fx, id, 'signature.unknown_key');
      }
    });

    it("one good + one signature by p2's registered key, uploaded as p1 → rejected", async () => {
      const id = await process(fx, await openpgpSignEncrypt(PLAIN, { signingKeys: [fx.partnerKey.privateKey, p2.privateKey], encryptionKeys: gw() }));
      await expectRejected(fx, id, 'signature.unknown_key');
    });

    it('one good + one signature by a registered but revoked key of the same partner → key.revoked', async () => {
      const [a, b] = await Promise.all([genEccKey(), genEccKey()]);
      await fx.addPartner('p-two');
      await fx.registerKey('p-two', a.armoredPublic);
      await fx.registerKey('p-two', b.armoredPublic);
      await fx.ledger.pgpKeys.revoke(b.fingerprint, new Date(Date.now() - 60_000), 'test');
      const id = await process(fx, await openpgpSignEncrypt(PLAIN, { signingKeys: [a.privateKey, b.privateKey], encryptionKeys: gw() }), 'p-two');
      await expectRejected(fx, id, 'key.revoked');
      // and with the good key alone the partner is fine
      await expectAdvanced(fx, await process(fx, await openpgpSignEncrypt(PLAIN, { signingKeys: [a.privateKey], encryptionKeys: gw() }), 'p-two'), PLAIN, a.fingerprint);
    });
  });

  describe('message shapes', () => {
    it('cleartext-signed (openpgp.js) → pgp.cleartext_signed', async () => {
      const armored = await openpgp.sign({ message: await openpgp.createCleartextMessage({ text: 'hello' }), signingKeys: fx.partnerKey.privateKey });
      expect(armored).to.match(/^-----BEGIN PGP SIGNED MESSAGE/);
      await expectRejected(fx, await process(fx, enc(armored)), 'pgp.cleartext_signed');
      await expectRejected(fx, await process(fx, enc(`\r\n  \n${armored}`)), 'pgp.cleartext_signed');
    });

    it('cleartext-signed (gpg --clearsign) → pgp.cleartext_signed', async () => {
      const bytes = (await gpg.run(['--local-user', gpgEd, '--clearsign', '--output', '-'], PLAIN)).stdout;
      await expectRejected(fx, await process(fx, bytes), 'pgp.cleartext_signed');
    });

    it('an armored detached signature → pgp.malformed', async () => {
      const bytes = (await gpg.run(['--local-user', gpgEd, '--armor', '--detach-sign', '--output', '-'], PLAIN)).stdout;
      await expectRejected(fx, await process(fx, bytes), 'pgp.malformed');
    });

    it('signed only, not encrypted (openpgp.js and gpg --sign) → pgp.not_encrypted', async () => {
      await expectRejected(fx, await process(fx, await openpgpSignOnly(PLAIN, fx.partnerKey.privateKey)), 'pgp.not_encrypted');
      const bytes = (await gpg.run(['--local-user', gpgEd, '--sign', '--output', '-'], PLAIN)).stdout;
      await expectRejected(fx, await process(fx, bytes), 'pgp.not_encrypted');
    });

    it('password-encrypted only (gpg --symmetric) → pgp.not_encrypted; no password is ever tried', async () => {
      const bytes = (await gpg.run(['--symmetric', '--passphrase', 'pw', '--output', '-'], PLAIN)).stdout;
      await expectRejected(fx, await process(fx, bytes), 'pgp.not_encrypted');
    });

    it('text garbage, an empty file and a public key block → pgp.malformed', async () => {
      await expectRejected(fx, await process(fx, enc('this is not an OpenPGP message\n')), 'pgp.malformed');
      await expectRejected(fx, await process(fx, new Uint8Array(0)), 'pgp.malformed');
      await expectRejected(fx, await process(fx, enc(fx.partnerKey.armoredPublic)), 'pgp.malformed');
    });

    it('20 random blobs → all rejected, nothing promoted', async () => {
      const seen = new Map<string, number>();
      for (let i = 0; i < 20; i++) {
        const code = await expectRejectedAnyOf(fx, await process(fx, randomBytes(64 + i * 97)),
          ['pgp.malformed', 'pgp.integrity', 'pgp.not_encrypted', 'pgp.weak_algorithm', 'decrypt.no_key', 'pgp.no_integrity_protection'], `random blob ${i}`);
        seen.set(code, (seen.get(code) ?? 0) + 1);
      }
      console.log(`      random blobs: ${JSON.stringify(Object.fromEntries(seen))}`);
    });

    it('encrypted to an unknown key → decrypt.no_key naming the current gateway key', async () => {
      const id = await process(fx, await openpgpSignEncrypt(PLAIN, { signingKeys: [fx.partnerKey.privateKey], encryptionKeys: [stranger.publicKey] }));
      const detail = await expectRejected(fx, id, 'decrypt.no_key');
      expect(detail.currentKey).to.equal(fx.gatewayRow.fingerprint);
      expect(String(detail.message)).to.include(shortFingerprint(fx.gatewayRow.fingerprint));
    });

    it('gpg --hidden-recipient (wildcard key id) → decrypt.no_key', async () => {
      const bytes = await gpg.run(['--local-user', gpgEd, '--hidden-recipient', fx.gatewayRow.fingerprint, '--sign', '--encrypt', '--output', '-'], PLAIN);
      await expectRejected(fx, await process(fx, bytes.stdout), 'decrypt.no_key');
    });

    it('encrypted to the gateway AND an unknown key → accepted (the gateway key is found)', async () => {
      const id = await process(fx, await openpgpSignEncrypt(PLAIN, { signingKeys: [fx.partnerKey.privateKey], encryptionKeys: [stranger.publicKey, fx.gatewayPublic] }));
      await expectAdvanced(fx, id, PLAIN, fx.partnerKey.fingerprint);
    });

    it('nested compression (compressed inside compressed) → pgp.malformed; one level is fine', async () => {
      const zlib = openpgp.enums.compression.zlib;
      const make = async (levels: number, plain: Uint8Array) => {
        type Compressible = openpgp.Message<Uint8Array> & { compress(algo: openpgp.enums.compression): Compressible };
        let m = await openpgp.sign({ message: await openpgp.createMessage({ binary: plain }), signingKeys: fx.partnerKey.privateKey, format: 'object' }) as Compressible;
        for (let i = 0; i < levels; i++) m = m.compress(zlib); // Message#compress exists but is not in openpgp's types
        return openpgp.encrypt({ message: m, encryptionKeys: gw(), format: 'binary', config: { preferredCompressionAlgorithm: openpgp.enums.compression.uncompressed } });
      };
      await expectAdvanced(fx, await process(fx, await make(1, enc('one level'))), enc('one level'), fx.partnerKey.fingerprint);
      await expectRejected(fx, await process(fx, await make(2, PLAIN)), 'pgp.malformed');
      await expectRejected(fx, await process(fx, await make(8, PLAIN)), 'pgp.malformed');
    });

    it('two literal packets in one message (signed or not) → rejected', async () => {
      const lit = async (text: string) => (await openpgp.createMessage({ binary: enc(text) })).packets;
      const signed = await openpgp.sign({ message: await openpgp.createMessage({ binary: enc('first') }), signingKeys: fx.partnerKey.privateKey, format: 'object' });
      const codes: string[] = [];
      for (const [label, packets] of [
        ['two bare literals', [...await lit('first'), ...await lit('second')]],
        ['a signed message plus a literal', [...signed.packets, ...await lit('smuggled')]],
        ['a literal plus a signed message', [...await lit('smuggled'), ...signed.packets]],
      ] as const) {
        const list = new openpgp.PacketList<openpgp.AnyPacket>();
        list.push(...(packets as openpgp.AnyPacket[]));
        const bytes = await openpgp.encrypt({ message: new openpgp.Message(list) as openpgp.Message<Uint8Array>, encryptionKeys: gw(), format: 'binary' });
        codes.push(`${label}: ${await expectRejectedAnyOf(fx, await process(fx, bytes), ['pgp.malformed', 'signature.missing'], label)}`);
      }
      console.log(`      ${codes.join('; ')}`);
    });

    it('the literal data file name is never used as a path', async () => {
      const message = await openpgp.createMessage({ binary: enc('named'), filename: '../../../../pgw-escape-canary' });
      const bytes = await openpgp.encrypt({ message, signingKeys: fx.partnerKey.privateKey, encryptionKeys: gw(), format: 'binary' });
      await expectAdvanced(fx, await process(fx, bytes), enc('named'), fx.partnerKey.fingerprint);
      const all = await fsp.readdir(fx.dir, { recursive: true });
      expect(all.filter((f) => String(f).includes('pgw-escape-canary'))).to.deep.equal([]);
      for (const d of [fx.dataDir.spoolDir, fx.dataDir.quarantineDir, fx.dataDir.payloadDir]) {
        const escaped = path.resolve(d, '../../../../pgw-escape-canary');
        expect(await fsp.access(escaped).then(() => true, () => false), escaped).to.equal(false);
      }
    });

    it('a SED message (SE packet, no MDC) built with openpgp packet classes → pgp.no_integrity_protection', async () => {
      const sessionKey = await openpgp.generateSessionKey({ encryptionKeys: fx.gatewayPublic });
      const signed = await openpgp.readMessage({ binaryMessage: await openpgpSignOnly(PLAIN, fx.partnerKey.privateKey) });
      const se = new openpgp.SymmetricallyEncryptedDataPacket() as unknown as {
        packets: unknown; encrypt(algo: openpgp.enums.symmetric, key: Uint8Array): Promise<void>;
      };
      se.packets = signed.packets;
      await se.encrypt(openpgp.enums.symmetric[sessionKey.algorithm as keyof typeof openpgp.enums.symmetric], sessionKey.data);
      const pkesk = await openpgp.encryptSessionKey({ ...sessionKey, encryptionKeys: fx.gatewayPublic, format: 'object' });
      const list = new openpgp.PacketList<openpgp.AnyPacket>();
      list.push(...pkesk.packets, se as unknown as openpgp.AnyPacket);
      const bytes = list.write();
      expect(bytes[packetOffset(bytes, 9)]).to.equal(0xc9); // really an SE packet
      await expectRejected(fx, await process(fx, bytes), 'pgp.no_integrity_protection');
    });

    it('an authentic SEIPD (valid MDC) holding an SE packet, which stalls openpgp → pgp.malformed within the stall limit', async () => {
      // Anyone can encrypt to the gateway key. openpgp 6.3 (allowUnauthenticatedStream) never
      // settles decrypt() for this shape: without the stage's progress guard the job would hang.
      for (const size of [100, 1024 * 1024]) {
        const sk = await openpgp.generateSessionKey({ encryptionKeys: fx.gatewayPublic, config: { aeadProtect: false } });
        const se = new openpgp.SymmetricallyEncryptedDataPacket() as unknown as { encrypted: Uint8Array };
        se.encrypted = randomBytes(size);
        const inner = new openpgp.PacketList<openpgp.AnyPacket>();
        inner.push(se as unknown as openpgp.AnyPacket);
        const seipd = new openpgp.SymEncryptedIntegrityProtectedDataPacket() as unknown as {
          version: number; packets: unknown; encrypt(algo: openpgp.enums.symmetric, key: Uint8Array): Promise<void>;
        };
        seipd.version = 1;
        seipd.packets = inner;
        await seipd.encrypt(openpgp.enums.symmetric[sk.algorithm as keyof typeof openpgp.enums.symmetric], sk.data);
        const pkesk = await openpgp.encryptSessionKey({ ...sk, encryptionKeys: fx.gatewayPublic, format: 'object' });
        const list = new openpgp.PacketList<openpgp.AnyPacket>();
        list.push(...pkesk.packets, seipd as unknown as openpgp.AnyPacket);
        const t0 = Date.now();
        const id = await process(fx, list.write());
        // It must end (openpgp alone never does); the bound is loose because CI machines are busy.
        expect(Date.now() - t0, 'gave up after the stall limit').to.be.below(STALL_MS + 15_000);
        await expectRejected(fx, id, 'pgp.malformed');
      }
    });

    it('SEIPD → SE downgrade of a real message (openpgp.js and gpg) → pgp.no_integrity_protection', async () => {
      for (const original of [
        await openpgpSignEncrypt(PLAIN, { signingKeys: [fx.partnerKey.privateKey], encryptionKeys: gw() }),
        await gpgSE(PLAIN, gpgEd),
      ]) {
        const bytes = Uint8Array.from(original);
        const at = packetOffset(bytes, 18);
        expect(bytes[at]).to.equal(0xd2);
        bytes[at] = 0xc9; // new-format header, tag 9 (Symmetrically Encrypted Data), same length
        await expectRejected(fx, await process(fx, bytes), 'pgp.no_integrity_protection');
      }
    });

    it('a missing spool file is a system error: the job is retried, the batch stays in decrypt', async () => {
      const id = await fx.spool(await openpgpSignEncrypt(enc('spool gone'), { signingKeys: [fx.partnerKey.privateKey], encryptionKeys: gw() }));
      await fsp.rm(fx.dataDir.spoolFile(id));
      let thrown: unknown = null;
      await runDecryptStage(fx.ctx, id).catch((e: unknown) => { thrown = e; });
      expect((thrown as NodeJS.ErrnoException | null)?.code).to.equal('ENOENT');
      const b = await fx.batch(id);
      expect({ stage: b.stage, outcome: b.outcome }).to.deep.equal({ stage: 'decrypt', outcome: null });
      expect(await fx.queues.hasLiveJob('ack', id)).to.equal(false);
    });
  });

  describe('integrity: modified, truncated or extended messages are 100% rejected', () => {
    // Any rejection will do (the codes seen are recorded); what matters is that nothing passes.
    const ALLOWED: ErrorCode[] = ['pgp.integrity', 'pgp.malformed', 'decrypt.no_key', 'signature.invalid', 'pgp.weak_algorithm',
      'pgp.no_integrity_protection', 'pgp.not_encrypted'];
    let base: Uint8Array;
    let plain: Buffer;
    before(async () => {
      plain = randomBytes(48 * 1024);
      base = await gpgSE(plain, gpgEd, ['-z', '0']);
      // the unmodified file is good: every rejection below is due to the change
      await expectAdvanced(fx, await process(fx, base), plain, gpgEd);
    });

    const tallies: Record<string, Record<string, number>> = {};
    const record = (what: string, code: string) => {
      tallies[what] ??= {};
      tallies[what]![code] = (tallies[what]![code] ?? 0) + 1;
    };
    after(() => {
      for (const [what, t] of Object.entries(tallies)) console.log(`      ${what}: ${JSON.stringify(t)}`);
    });

    for (const [what, mask, shift] of [['one flipped bit (xor 0x01)', 0x01, 0], ['one flipped byte (xor 0xff)', 0xff, 0.5]] as const) {
      it(`${what} at 20 offsets spread over a gpg binary file`, async () => {
        const offsets = spread(base.length, 20, shift);
        expect(new Set(offsets).size).to.equal(20);
        for (const off of offsets) {
          const bytes = Uint8Array.from(base);
          bytes[off] = bytes[off]! ^ mask;
          const code = await expectRejectedAnyOf(fx, await process(fx, bytes), ALLOWED, `${what} at ${off}/${base.length}`);
          record(what, code);
        }
      });
    }

    it('one flipped bit at 20 offsets in the first bytes: rejected, or (unauthenticated redundant framing) the very same content', async () => {
      // The session-key packet is outside the MDC. Some of its bits are redundant encoding — e.g.
      // the low bits of an MPI's bit count (263 vs 262 bits is still 33 bytes) — and flipping
      // them changes nothing that is decrypted or verified. What must never happen is that a
      // flip yields accepted content other than the original.
      const head = packetOffset(base, 18) + 24;
      const offsets = [...new Set(spread(head - 1, 20).map((o) => o + 1))]; // offset 0 is flipped above already
      expect(offsets.length).to.be.at.least(18);
      for (const off of offsets) {
        const bytes = Uint8Array.from(base);
        bytes[off] = bytes[off]! ^ 0x01;
        const id = await process(fx, bytes);
        const b = await fx.batch(id);
        if (b.stage === 'validate') {
          await expectAdvanced(fx, id, plain, gpgEd);
          record('flipped bit in the head', `accepted unchanged (offset ${off})`);
        } else {
          record('flipped bit in the head', await expectRejectedAnyOf(fx, id, ALLOWED, `head bit flip at ${off}`));
        }
      }
    });

    it('truncation at 8 points', async () => {
      const n = base.length;
      for (const len of [1, 20, Math.floor(n / 3), Math.floor(n / 2), n - 100, n - 22, n - 2, n - 1]) {
        const code = await expectRejectedAnyOf(fx, await process(fx, base.subarray(0, len)), ALLOWED, `truncated to ${len}/${n}`);
        record('truncation', code);
      }
    });

    it('appended junk: random bytes, one zero byte, a marker packet, a second copy of the message', async () => {
      const marker = Uint8Array.from([0xca, 0x03, 0x50, 0x47, 0x50]); // new-format Marker packet "PGP"
      for (const [label, tail] of [
        ['16 random bytes', randomBytes(16)], ['one zero byte', new Uint8Array(1)], ['marker packet', marker], ['second copy', base],
      ] as const) {
        const bytes = Buffer.concat([base, tail]);
        const code = await expectRejectedAnyOf(fx, await process(fx, bytes), ALLOWED, `appended ${label}`);
        record('appended', code);
      }
    });

    it('extra packets openpgp would skip (Marker, Padding) before, between or after → pgp.malformed', async () => {
      const marker = Uint8Array.from([0xca, 0x03, 0x50, 0x47, 0x50]);
      const padding = Uint8Array.from([0xd5, 0x04, 1, 2, 3, 4]); // tag 21
      const seipd = packetOffset(base, 18);
      for (const [label, bytes] of [
        ['marker first', Buffer.concat([marker, base])],
        ['marker between session key and data', Buffer.concat([base.subarray(0, seipd), marker, base.subarray(seipd)])],
        ['padding appended', Buffer.concat([base, padding])],
      ] as const) {
        await expectRejected(fx, await process(fx, bytes), 'pgp.malformed').catch((e: Error) => { throw new Error(`${label}: ${e.message}`); });
      }
    });

    it('armored: a changed base64 character, a cut-off armor, junk after the END line', async () => {
      const armored = Buffer.from(await gpgSE(plain, gpgEd, ['--armor', '-z', '0'])).toString('latin1');
      const lines = armored.split('\n');
      const mid = Math.floor(lines.length / 2);
      const flipped = [...lines];
      flipped[mid] = (flipped[mid]![5] === 'A' ? 'B' : 'A').padStart(6, flipped[mid]!.slice(0, 5)) + flipped[mid]!.slice(6);
      const cut = lines.slice(0, mid).join('\n');
      for (const [label, text] of [
        ['changed base64 character', flipped.join('\n')],
        ['cut-off armor', cut],
        ['junk after END', `${armored}\nsome trailing junk\n`],
      ] as const) {
        const code = await expectRejectedAnyOf(fx, await process(fx, Buffer.from(text, 'latin1')), ALLOWED, `armored: ${label}`);
        record('armored', code);
      }
    });
  });
  describe('logging', () => {
    it('logs carry codes, ids and fingerprints, never plaintext or the literal file name', async () => {
      const lines: string[] = [];
      const stream = new Writable({ write(chunk: Buffer, _e, cb) { lines.push(chunk.toString('utf8')); cb(); } });
      const saved = fx.ctx.log;
      fx.ctx.log = createLogger({ level: 'debug', stream });
      try {
        const canary = enc('{"bsn":"123456782","name":"Canary Person 9c1e"}');
        const message = await openpgp.createMessage({ binary: canary, filename: 'canary-file-name-5d2b.json' });
        const good = await openpgp.encrypt({ message, signingKeys: fx.partnerKey.privateKey, encryptionKeys: gw(), format: 'binary' });
        const goodId = await process(fx, good);
        const bad = await openpgp.encrypt({ message: await openpgp.createMessage({ binary: canary, filename: 'canary-file-name-5d2b.json' }), signingKeys: stranger.privateKey, encryptionKeys: gw(), format: 'binary' });
        const badId = await process(fx, bad);
        await new Promise<void>((resolve) => setImmediate(resolve));
        const all = lines.join('');
        expect(all).to.include(goodId).and.to.include(badId).and.to.include('signature.unknown_key');
        for (const secret of ['123456782', 'Canary Person', 'canary-file-name']) expect(all, secret).to.not.include(secret);
      } finally {
        fx.ctx.log = saved;
      }
    });
  });

  describe('armor', () => {
    it('CRLF line ends, blank lines and spaces after the END line are fine', async () => {
      const armored = Buffer.from(await gpgSE(PLAIN, gpgEd, ['--armor'])).toString('latin1');
      const crlf = `${armored.replace(/\n/g, '\r\n')}\r\n \r\n\t\r\n`;
      await expectAdvanced(fx, await process(fx, Buffer.from(crlf, 'latin1')), PLAIN, gpgEd);
    });

    it('an 8 MiB armored message (many read chunks, consumer slower than the disk) round-trips', async () => {
      const big = randomBytes(8 * 1024 * 1024 + 5);
      const id = await process(fx, await gpgSE(big, gpgRsa, ['--armor', '-z', '0']));
      await expectAdvanced(fx, id, big, gpgRsa);
    });

    it('two armored messages in one file → pgp.malformed', async () => {
      const a = Buffer.from(await gpgSE(enc('first'), gpgEd, ['--armor']));
      const b = Buffer.from(await gpgSE(enc('second'), gpgEd, ['--armor']));
      await expectRejected(fx, await process(fx, Buffer.concat([a, b])), 'pgp.malformed');
    });

    it("a crafted armored file with '=' early in the data is rejected without buffering the file", async () => {
      const id = await fx.spool(enc('placeholder for the crafted file'));
      // 128 MiB of base64-looking text written in pieces (no big allocation in this process)
      const fh = await fsp.open(fx.dataDir.spoolFile(id), 'w');
      await fh.write('-----BEGIN PGP MESSAGE-----\n\nhQEMA=AAAA\n');
      const block = Buffer.from(`${'Q'.repeat(64)}\n`.repeat(16 * 1024));
      for (let n = 0; n < (128 * 1024 * 1024) / block.length; n++) await fh.write(block);
      await fh.write('-----END PGP MESSAGE-----\n');
      await fh.close();
      const base = globalThis.process.memoryUsage().rss;
      let peak = base;
      const sampler = setInterval(() => { peak = Math.max(peak, globalThis.process.memoryUsage().rss); }, 2);
      try {
        await runDecryptStage(fx.ctx, id, { stallMs: STALL_MS });
      } finally {
        clearInterval(sampler);
      }
      peak = Math.max(peak, globalThis.process.memoryUsage().rss);
      console.log(`      crafted armor: RSS delta ${((peak - base) / 1e6).toFixed(1)} MB for a 128 MiB file`);
      await expectRejectedAnyOf(fx, id, ['pgp.malformed', 'pgp.integrity'], 'crafted armor');
      expect(peak - base, 'memory does not grow with the file').to.be.below(64 * 1000 * 1000);
    });
  });

  describe('time and key policy end to end', () => {
    const now = () => Date.now();
    /** A fresh partner with one key; returns the key. */
    async function partnerWith(id: string, key: TestKeyPair, opts: { activateAt?: Date; now?: Date } = {}): Promise<TestKeyPair> {
      await fx.addPartner(id);
      await fx.registerKey(id, key.armoredPublic, opts);
      return key;
    }
    const signedAt = (k: TestKeyPair, at: Date, plain = PLAIN) =>
      openpgpSignEncrypt(plain, { signingKeys: [k.privateKey], encryptionKeys: gw(), signDate: at });

    it('a signature 1 day in the future → signature.future', async () => {
      const id = await process(fx, await signedAt(fx.partnerKey, new Date(now() + DAY)));
      await expectRejected(fx, id, 'signature.future');
    });

    it('a signature 2 minutes ahead (within futureSkewSeconds=300) → accepted', async () => {
      expect(fx.config.signature.futureSkewSeconds).to.equal(300);
      const at = new Date(now() + 120_000);
      const id = await process(fx, await signedAt(fx.partnerKey, at, enc('skew')));
      await expectAdvanced(fx, id, enc('skew'), fx.partnerKey.fingerprint, at);
    });

    it('a signature 10 minutes ahead (beyond the skew) → signature.future', async () => {
      const id = await process(fx, await signedAt(fx.partnerKey, new Date(now() + 600_000), enc('skew 10m')));
      await expectRejected(fx, id, 'signature.future');
    });

    it('older than the window → signature.too_old; inside a configured window → accepted', async () => {
      const k = await partnerWith('p-old', await genEccKey({ date: new Date(now() - 10 * DAY) }));
      await expectRejected(fx, await process(fx, await signedAt(k, new Date(now() - 8 * DAY)), 'p-old'), 'signature.too_old');
      const saved = fx.config.signature.maxAgeSeconds;
      fx.config.signature.maxAgeSeconds = 3600;
      try {
        await expectRejected(fx, await process(fx, await signedAt(k, new Date(now() - 2 * 3600_000)), 'p-old'), 'signature.too_old');
        const ok = enc('30 minutes old');
        const at = new Date(now() - 1800_000);
        await expectAdvanced(fx, await process(fx, await signedAt(k, at, ok), 'p-old'), ok, k.fingerprint, at);
      } finally {
        fx.config.signature.maxAgeSeconds = saved;
      }
    });

    it('back-dated signature (valid then) by a key that has expired since → key.expired', async () => {
      // created 5 days ago, expires after 2 days (3 days ago); registered while it was valid
      const k = await genEccKey({ date: new Date(now() - 5 * DAY), keyExpirationTime: 2 * 24 * 3600 });
      await partnerWith('p-exp', k, { now: new Date(now() - 4 * DAY) });
      const row = await fx.ledger.pgpKeys.get(k.fingerprint);
      expect(Date.parse(row!.not_after!)).to.be.below(now());
      await expectRejected(fx, await process(fx, await signedAt(k, new Date(now() - 4 * DAY)), 'p-exp'), 'key.expired');
    });

    it('signature made after the key had expired (openpgp judges the key at signature time) → key.expired', async () => {
      const k = await genEccKey({ date: new Date(now() - 5 * DAY) });
      const bytes = await signedAt(k, new Date(now() - DAY)); // the key had no expiry when it signed...
      // ...but the key as registered (same key material, new self-signature) expired 4 days ago
      const reformatted = await openpgp.reformatKey({
        privateKey: k.privateKey, userIDs: [{ name: 'Expired', email: 'expired@example.invalid' }],
        keyExpirationTime: 24 * 3600, date: new Date(now() - 5 * DAY), format: 'object',
      });
      expect(reformatted.publicKey.getFingerprint()).to.equal(k.publicKey.getFingerprint());
      await fx.addPartner('p-exp2');
      await fx.registerKey('p-exp2', reformatted.publicKey.armor(), { now: new Date(now() - 4.5 * DAY) });
      const detail = await expectRejected(fx, await process(fx, bytes, 'p-exp2'), 'key.expired');
      // The partner is told which key and its dates.
      const created = new Date(now() - 5 * DAY).toISOString().slice(0, 10);
      expect(String(detail.message)).to.include(`(key ${shortFingerprint(k.publicKey.getFingerprint())}, created ${created}, valid until`);
    });

    it('a key whose not_after (our window) has passed → key.expired, also for a back-dated signature', async () => {
      const k = await partnerWith('p-after', await genEccKey({ date: new Date(now() - 3 * DAY) }));
      await fx.setKeyWindow(k.fingerprint, { not_after: new Date(now() - 3600_000).toISOString() });
      await expectRejected(fx, await process(fx, await signedAt(k, new Date(now())), 'p-after'), 'key.expired');
      await expectRejected(fx, await process(fx, await signedAt(k, new Date(now() - 2 * 3600_000)), 'p-after'), 'key.expired');
    });

    it('a signature before our not_before (activateAt) → key.not_yet_active', async () => {
      const future = await partnerWith('p-act', await genEccKey(), { activateAt: new Date(now() + DAY) });
      await expectRejected(fx, await process(fx, await signedAt(future, new Date(now())), 'p-act'), 'key.not_yet_active');
      // active since an hour ago, but the signature claims two hours ago
      const k = await partnerWith('p-act2', await genEccKey({ date: new Date(now() - 3 * DAY) }), { activateAt: new Date(now() - 3600_000) });
      await expectRejected(fx, await process(fx, await signedAt(k, new Date(now() - 2 * 3600_000)), 'p-act2'), 'key.not_yet_active');
      const ok = enc('after activation');
      const at = new Date(now() - 60_000);
      await expectAdvanced(fx, await process(fx, await signedAt(k, at, ok), 'p-act2'), ok, k.fingerprint, at);
    });

    it('a signature dated before the key was created (gpg --faked-system-time) → key.not_yet_active', async () => {
      const before = Math.floor(now() / 1000) - 3600;
      const bytes = await gpgSE(PLAIN, gpgEd, ['--faked-system-time', String(before), '--ignore-time-conflict']);
      await expectRejected(fx, await process(fx, bytes), 'key.not_yet_active');
    });

    it('a revoked key → key.revoked, also for a signature back-dated before the revocation', async () => {
      const k = await partnerWith('p-rev', await genEccKey({ date: new Date(now() - 3 * DAY) }));
      expect(await fx.ledger.pgpKeys.revoke(k.fingerprint, new Date(now() - 60_000), 'compromised')).to.equal(true);
      await expectRejected(fx, await process(fx, await signedAt(k, new Date(now())), 'p-rev'), 'key.revoked');
      await expectRejected(fx, await process(fx, await signedAt(k, new Date(now() - DAY)), 'p-rev'), 'key.revoked');
    });

    it('a SHA-1 message signature (gpg --digest-algo SHA1) → signature.weak_hash', async () => {
      const bytes = await gpgSE(PLAIN, gpgRsa, ['--digest-algo', 'SHA1']);
      await expectRejected(fx, await process(fx, bytes), 'signature.weak_hash');
    });
  });

  describe('gateway key rotation', () => {
    let rot: StageFixture;
    before(async () => {
      rot = await createStageFixture({ queuePrefix: 'pgwt-decrypt-rot' });
    });
    after(async () => {
      await rot?.close();
    });

    it('encrypted to a retired gateway key → decrypt.no_key naming the retirement and the current key', async () => {
      const old = { row: rot.gatewayRow, publicKey: rot.gatewayPublic };
      const current = await rot.addGatewayKey();
      const bytes = await openpgpSignEncrypt(PLAIN, { signingKeys: [rot.partnerKey.privateKey], encryptionKeys: [old.publicKey] });
      // during the overlap the old key still decrypts
      const during = await rot.spool(bytes);
      await runDecryptStage(rot.ctx, during, { stallMs: STALL_MS });
      expect((await rot.batch(during)).stage).to.equal('validate');
      expect((await rot.batch(during)).decrypt_key_fingerprint).to.equal(old.row.fingerprint);

      await rot.setKeyWindow(old.row.fingerprint, { not_after: new Date(Date.now() - 3600_000).toISOString() });
      const again = await openpgpSignEncrypt(enc('after retirement'), { signingKeys: [rot.partnerKey.privateKey], encryptionKeys: [old.publicKey] });
      const id = await rot.spool(again);
      await runDecryptStage(rot.ctx, id, { stallMs: STALL_MS });
      const detail = await expectRejected(rot, id, 'decrypt.no_key');
      expect(String(detail.message)).to.include('retired');
      expect(String(detail.message)).to.include(shortFingerprint(current.row.fingerprint));
      expect(detail.retiredKey).to.equal(old.row.fingerprint);
      expect(detail.currentKey).to.equal(current.row.fingerprint);

      // A revoked (not merely retired) gateway key is named as revoked.
      const third = await rot.addGatewayKey();
      await rot.ctx.ledger.pgpKeys.revoke(current.row.fingerprint, new Date(Date.now() - 60_000), 'test');
      const toRevoked = await openpgpSignEncrypt(enc('to a revoked key'), { signingKeys: [rot.partnerKey.privateKey], encryptionKeys: [current.publicKey] });
      const rid = await rot.spool(toRevoked);
      await runDecryptStage(rot.ctx, rid, { stallMs: STALL_MS });
      const rdetail = await expectRejected(rot, rid, 'decrypt.no_key');
      expect(String(rdetail.message)).to.include(`encrypted to gateway key ${shortFingerprint(current.row.fingerprint)}, revoked on`)
        .and.include(`the current key is ${shortFingerprint(third.row.fingerprint)} at /keys/gateway.asc`);
    });
    it('encrypted to the only gateway key after it was retired (no active key) → decrypt.no_key, not an operator code', async () => {
      const solo = await createStageFixture({ queuePrefix: 'pgwt-decrypt-solo' });
      try {
        await solo.setKeyWindow(solo.gatewayRow.fingerprint, { not_after: new Date(Date.now() - 60_000).toISOString() });
        const bytes = await openpgpSignEncrypt(PLAIN, { signingKeys: [solo.partnerKey.privateKey], encryptionKeys: [solo.gatewayPublic] });
        const detail = await expectRejected(solo, await process(solo, bytes), 'decrypt.no_key');
        expect(detail.retiredKey).to.equal(solo.gatewayRow.fingerprint);
      } finally {
        await solo.close();
      }
    });
  });

  describe('limits', () => {
    let lim: StageFixture;
    before(async () => {
      lim = await createStageFixture({ queuePrefix: 'pgwt-decrypt-lim', config: { limits: { decompressedBytes: 8 * 1024 * 1024 } } });
    });
    after(async () => {
      await lim?.close();
    });

    it('decompression bomb: 64 MiB of zeros, zlib, limit 8 MiB → limits.decompressed_size within bounded memory', async () => {
      const bomb = await openpgpSignEncrypt(new Uint8Array(64 * 1024 * 1024), {
        signingKeys: [lim.partnerKey.privateKey], encryptionKeys: [lim.gatewayPublic], compression: openpgp.enums.compression.zlib,
      });
      expect(bomb.length).to.be.below(1024 * 1024);
      const id = await lim.spool(bomb);
      global.gc?.();
      const base = globalThis.process.memoryUsage().rss;
      let peak = base;
      const sampler = setInterval(() => { peak = Math.max(peak, globalThis.process.memoryUsage().rss); }, 2);
      try {
        await runDecryptStage(lim.ctx, id, { stallMs: STALL_MS });
      } finally {
        clearInterval(sampler);
      }
      peak = Math.max(peak, globalThis.process.memoryUsage().rss);
      console.log(`      bomb: ${bomb.length} bytes, RSS delta ${((peak - base) / 1e6).toFixed(1)} MB`);
      expect(peak - base).to.be.below(300 * 1000 * 1000);
      await expectRejectedAnyOf(lim, id, ['limits.decompressed_size', 'limits.decompression_ratio'], 'bomb');
      expect((await lim.batch(id)).error_code).to.equal('limits.decompressed_size');
    });

    it('4 MiB of zeros (under the size limit) expanding > 200× → limits.decompression_ratio', async () => {
      const bytes = await openpgpSignEncrypt(new Uint8Array(4 * 1024 * 1024), {
        signingKeys: [lim.partnerKey.privateKey], encryptionKeys: [lim.gatewayPublic], compression: openpgp.enums.compression.zlib,
      });
      expect(bytes.length * 200).to.be.below(4 * 1024 * 1024);
      await expectRejected(lim, await process(lim, bytes), 'limits.decompression_ratio');
    });

    it('gpg bombs (64 MiB of zeros; zip, zlib, bzip2 at -z 9) → limits.decompressed_size within bounded memory', async () => {
      await gpg.importKey(lim.gatewayRow.public_armored);
      await lim.registerKey('p1', await gpg.exportPublic(gpgEd));
      const zeros = new Uint8Array(64 * 1024 * 1024);
      for (const algo of ['zip', 'zlib', 'bzip2']) {
        const bytes = await gpg.signEncrypt(zeros, gpgEd, lim.gatewayRow.fingerprint, ['-z', '9', '--compress-algo', algo]);
        const id = await lim.spool(bytes);
        const base = globalThis.process.memoryUsage().rss;
        let peak = base;
        const sampler = setInterval(() => { peak = Math.max(peak, globalThis.process.memoryUsage().rss); }, 2);
        try {
          await runDecryptStage(lim.ctx, id, { stallMs: STALL_MS });
        } finally {
          clearInterval(sampler);
        }
        peak = Math.max(peak, globalThis.process.memoryUsage().rss);
        console.log(`      gpg ${algo} bomb: ${bytes.length} bytes, RSS delta ${((peak - base) / 1e6).toFixed(1)} MB`);
        await expectRejected(lim, id, 'limits.decompressed_size');
        expect(peak - base, algo).to.be.below(300 * 1000 * 1000);
      }
    });

    it('exactly at the limit (8 MiB, compressible) → accepted', async () => {
      const plain = Buffer.alloc(8 * 1024 * 1024, 'a');
      const saved = lim.config.limits.decompressionRatio;
      lim.config.limits.decompressionRatio = 1e6;
      try {
        const bytes = await openpgpSignEncrypt(plain, { signingKeys: [lim.partnerKey.privateKey], encryptionKeys: [lim.gatewayPublic], compression: openpgp.enums.compression.zlib });
        await expectAdvanced(lim, await process(lim, bytes), plain, lim.partnerKey.fingerprint);
      } finally {
        lim.config.limits.decompressionRatio = saved;
      }
    });
  });
});
