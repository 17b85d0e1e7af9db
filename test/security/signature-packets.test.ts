/**
 * Property (keys/pgp/signature-count.ts): wherever the gateway decides "this is
 * signed", every signature packet present must be of a type allowed there and verify
 * against an allowed key; a packet openpgp.js would leave out of its results refuses the
 * whole. For each entry point — a key submission, a revocation certificate, a batch — a
 * hand-made packet of EVERY signature type (and a type no standard defines), of packet
 * versions 3 to 6, with random values and the partner's real key named as issuer, is sent
 * alone and next to a valid signature, in every shape the entry point reads: all refused,
 * the partner's keys exactly as before. The same shapes with only the valid signature pass
 * (controls), so a refusal is the rule's and not the harness's.
 *
 * Seeded (test/helpers/forged-signatures.ts): each case is named by its seed.
 */
import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { openpgp } from '../../keys/pgp/openpgp-lib.js';
import { submitPartnerKey, type SubmitPartnerKeyDeps } from '../../keys/partner-key-submission.js';
import { applyRevocationCertificate } from '../../keys/partner-revocation.js';
import { addPartnerKey } from '../../keys/partner-keys.js';
import type { Ledger } from '../../gateway/core/ledger/index.js';
import { runDecryptStage } from '../../workers/decrypt-stage.js';
import { tempLedger } from '../helpers/key-unit.js';
import { codeOf } from '../helpers/expect-code.js';
import { createStageFixture, genEccKey, type StageFixture, type TestKeyPair } from '../helpers/pgp-fixtures.js';
import {
  EVERY_SIGNATURE_TYPE, SeededRandom, armored, concat, forgedOnePass, forgedSignature, issuerOf, nonSignaturePackets, rawMessage, splitPackets, zlibPacket,
  type Issuer,
} from '../helpers/forged-signatures.js';

const BASE_SEED = 0x5119;
const VERSIONS = [4, 4, 4, 3, 5, 6] as const;
const POLICY = { maxAgeSeconds: 7 * 24 * 3600, futureSkewSeconds: 300 };
const PLAIN = new TextEncoder().encode('{"schema":"x","records":[{"note":"signed by whom?"}]}');

const CIPHERS = ['aes', 'ocb'] as const;
type Cipher = (typeof CIPHERS)[number];
const hexType = (t: number) => `0x${t.toString(16).padStart(2, '0')}`;
const rows = (ledger: Ledger, partnerId: string) => ledger.pgpKeys.partnerKeys(partnerId);

describe('security: every signature packet present must verify (property, every type, every entry point)', function () {
  this.timeout(300_000);

  describe('key submission (PUT /v1/keys, /keys/incoming/)', () => {
    let ledger: Ledger;
    let close: () => Promise<void>;
    let partner: TestKeyPair;
    let issuer: Issuer;
    let deps: SubmitPartnerKeyDeps;

    before(async () => {
      ({ ledger, close } = await tempLedger('pgw-sigprop-sub-'));
      await ledger.partners.create({ id: 'p1', name: 'P1' });
      partner = await genEccKey({ name: 'Partner One' });
      await addPartnerKey(ledger, 'p1', partner.armoredPublic);
      issuer = issuerOf(partner.publicKey);
      deps = { ledger, signature: POLICY, activationDelaySeconds: 3600 };
    });
    after(async () => {
      await close?.();
    });

    const detachedBy = async (key: openpgp.PrivateKey, data: Uint8Array) =>
      openpgp.sign({ message: await openpgp.createMessage({ binary: data }), signingKeys: key, detached: true, format: 'binary' });

    it('a forged packet of every type and version, alone or next to a valid signature, binary or armored: refused, keys unchanged', async () => {
      const mallory = await genEccKey({ name: 'Mallory' });
      const keyBytes = new TextEncoder().encode(mallory.armoredPublic);
      const valid = await detachedBy(partner.privateKey, keyBytes);
      const before = await rows(ledger, 'p1');
      const seen: Record<string, number> = {};
      let n = 0;
      for (const { type, name } of EVERY_SIGNATURE_TYPE) {
        for (const shape of ['alone', 'valid first', 'forged first'] as const) {
          const seed = BASE_SEED + n++;
          const rnd = new SeededRandom(seed);
          const version = rnd.pick(VERSIONS);
          const forged = forgedSignature(issuer, rnd, { type, version });
          const file = shape === 'alone' ? forged : shape === 'valid first' ? concat([valid, forged]) : concat([forged, valid]);
          const asArmor = rnd.int(2) === 1;
          const label = `${name} (${hexType(type)}) v${version} ${shape}${asArmor ? ' armored' : ''} [seed ${seed}]`;
          const code = await codeOf(submitPartnerKey(deps, {
            partnerId: 'p1', armoredKey: keyBytes, signature: asArmor ? armored('PGP SIGNATURE', file) : file, channel: rnd.pick(['https', 'sftp'] as const),
          }));
          expect(code, label).to.equal('key.submission_bad_signature');
          seen[code] = (seen[code] ?? 0) + 1;
        }
      }
      const rnd = new SeededRandom(BASE_SEED - 1);
      for (const { name, bytes } of nonSignaturePackets(rnd)) {
        for (const file of [concat([valid, bytes]), concat([bytes, valid])]) {
          expect(await codeOf(submitPartnerKey(deps, { partnerId: 'p1', armoredKey: keyBytes, signature: file, channel: 'sftp' })), `a ${name} packet in the signature file`)
            .to.equal('key.submission_bad_signature');
        }
      }
      expect(await rows(ledger, 'p1'), 'the partner\'s keys are exactly as before').to.deep.equal(before);
      expect(await ledger.pgpKeys.get(mallory.fingerprint)).to.equal(undefined);
      console.log(`      ${n} forged submissions: ${JSON.stringify(seen)}`);

      // Control: the valid signature alone is accepted (binary, and armored for another key).
      expect((await submitPartnerKey(deps, { partnerId: 'p1', armoredKey: keyBytes, signature: valid, channel: 'https' })).fingerprint).to.equal(mallory.fingerprint);
      const other = await genEccKey({ name: 'Next' });
      const otherBytes = new TextEncoder().encode(other.armoredPublic);
      const sig = armored('PGP SIGNATURE', await detachedBy(partner.privateKey, otherBytes));
      expect((await submitPartnerKey(deps, { partnerId: 'p1', armoredKey: otherBytes, signature: sig, channel: 'sftp' })).fingerprint).to.equal(other.fingerprint);
    });
  });

  describe('revocation certificate (/keys/incoming/revoke.asc, pgw keys partner revoke --certificate)', () => {
    let ledger: Ledger;
    let close: () => Promise<void>;
    let fingerprint: string;
    let issuer: Issuer;
    let valid: Uint8Array;

    before(async () => {
      ({ ledger, close } = await tempLedger('pgw-sigprop-rev-'));
      await ledger.partners.create({ id: 'p1', name: 'P1' });
      const k = await openpgp.generateKey({
        type: 'ecc', curve: 'curve25519Legacy', userIDs: [{ name: 'Revocable', email: 'r@p1.invalid' }], date: new Date(Date.now() - 60_000), format: 'armored',
      });
      const pub = await openpgp.readKey({ armoredKey: k.publicKey });
      fingerprint = pub.getFingerprint().toLowerCase();
      await addPartnerKey(ledger, 'p1', k.publicKey);
      issuer = issuerOf(pub);
      valid = (await openpgp.unarmor(k.revocationCertificate)).data as unknown as Uint8Array;
      expect(splitPackets(valid).map((p) => p.tag), 'the real certificate is one signature packet').to.deep.equal([2]);
    });
    after(async () => {
      await close?.();
    });

    it('a forged packet of every type and version, alone or next to the real certificate: refused, the key not revoked', async () => {
      const before = await rows(ledger, 'p1');
      let n = 0;
      const cert = (bytes: Uint8Array, rnd: SeededRandom) => {
        // As gpg stores it (PUBLIC KEY BLOCK, with or without its protective colon) or as a signature block.
        const kind = rnd.pick(['gpg', 'gpg-colon', 'signature'] as const);
        const text = armored(kind === 'signature' ? 'PGP SIGNATURE' : 'PGP PUBLIC KEY BLOCK', bytes);
        return kind === 'gpg-colon' ? `This is a revocation certificate\n\n:${text}` : text;
      };
      for (const { type, name } of EVERY_SIGNATURE_TYPE) {
        for (const shape of ['alone', 'valid first', 'forged first'] as const) {
          const seed = BASE_SEED + 1000 + n++;
          const rnd = new SeededRandom(seed);
          const version = rnd.pick(VERSIONS);
          const forged = forgedSignature(issuer, rnd, { type, version });
          const bytes = shape === 'alone' ? forged : shape === 'valid first' ? concat([valid, forged]) : concat([forged, valid]);
          const label = `${name} (${hexType(type)}) v${version} ${shape} [seed ${seed}]`;
          expect(await codeOf(applyRevocationCertificate(ledger, { partnerId: 'p1', certificate: cert(bytes, rnd), actor: 'partner:p1', channel: 'sftp' })), label)
            .to.equal('key.revocation_invalid');
        }
      }
      const rnd = new SeededRandom(BASE_SEED + 999);
      for (const { name, bytes } of nonSignaturePackets(rnd)) {
        for (const b of [concat([valid, bytes]), concat([bytes, valid])]) {
          expect(await codeOf(applyRevocationCertificate(ledger, { partnerId: 'p1', certificate: cert(b, rnd), actor: 'partner:p1', channel: 'sftp' })), `a ${name} packet in the certificate`)
            .to.equal('key.revocation_invalid');
        }
      }
      expect(await rows(ledger, 'p1'), 'the partner\'s keys are exactly as before').to.deep.equal(before);
      expect((await ledger.pgpKeys.get(fingerprint))!.revoked_at).to.equal(null);

      // Control: the real certificate alone revokes the key.
      const r = await applyRevocationCertificate(ledger, { partnerId: 'p1', certificate: cert(valid, rnd), actor: 'partner:p1', channel: 'sftp' });
      expect(r).to.include({ fingerprint, changed: true });
    });
  });

  describe('batch (decrypt stage, every decryption path)', () => {
    let fx: StageFixture;
    let issuer: Issuer;
    /** The parts of a valid signed message: one-pass + literal + signature, and a prefix signature over the same data. */
    let ops: Uint8Array;
    let lit: Uint8Array;
    let sig: Uint8Array;
    let prefixSig: Uint8Array;
    let compressedSigned: Uint8Array;

    before(async () => {
      fx = await createStageFixture({ queuePrefix: 'pgwt-sigprop' });
      issuer = issuerOf(fx.partnerKey.publicKey);
      const message = await openpgp.createMessage({ binary: PLAIN });
      const signed = splitPackets(await openpgp.sign({ message, signingKeys: fx.partnerKey.privateKey, format: 'binary' }));
      expect(signed.map((p) => p.tag)).to.deep.equal([4, 11, 2]);
      [ops, lit, sig] = signed.map((p) => p.bytes) as [Uint8Array, Uint8Array, Uint8Array];
      prefixSig = await openpgp.sign({ message, signingKeys: fx.partnerKey.privateKey, detached: true, format: 'binary' });
      compressedSigned = zlibPacket(concat([ops, lit, sig]));
    });
    after(async () => {
      await fx?.close();
    });

    /**
     * Encrypt the packets `inner` to the gateway and run the decrypt stage. Ciphers: `aes` is
     * SEIPD v1 with AES (the stage's own CFB layer, keys/pgp/seipd-v1.ts); `ocb` is SEIPD v2,
     * which goes through openpgp's decryption.
     */
    async function decide(inner: Uint8Array, o: { compression: openpgp.enums.compression; cipher: Cipher }): Promise<{ id: string; stage: string; code: string | null }> {
      const sessionKey = o.cipher === 'aes' ? undefined
        : { data: Uint8Array.from(randomBytes(32)), algorithm: 'aes256', aeadAlgorithm: 'ocb' };
      const bytes = await openpgp.encrypt({
        message: rawMessage(inner), encryptionKeys: fx.gatewayPublic, format: 'binary', config: { preferredCompressionAlgorithm: o.compression },
        ...(sessionKey ? { sessionKey: sessionKey as openpgp.SessionKey } : {}),
      });
      const seipd = (await openpgp.readMessage({ binaryMessage: bytes })).packets.findPacket(openpgp.enums.packet.symEncryptedIntegrityProtectedData) as unknown as { version: number };
      expect(seipd.version, `SEIPD version for ${o.cipher}`).to.equal(o.cipher === 'ocb' ? 2 : 1);
      const id = await fx.spool(bytes);
      await runDecryptStage(fx.ctx, id, { stallMs: 3000 });
      const b = await fx.batch(id);
      return { id, stage: b.stage, code: b.error_code };
    }

    async function expectRefused(id: string, label: string): Promise<void> {
      const b = await fx.batch(id);
      expect({ stage: b.stage, outcome: b.outcome, signer: b.signer_fingerprint }, label).to.deep.equal({ stage: 'ack', outcome: 'rejected', signer: null });
      expect(await fx.payloadExists(id), `${label}: nothing released`).to.equal(false);
      expect(await fx.queues.hasLiveJob('validate', id), `${label}: nothing enqueued`).to.equal(false);
    }

    it('controls: the valid shapes pass on every path (one-pass, prefix signature, compressed inside)', async () => {
      for (const cipher of CIPHERS) {
        for (const [label, inner, compression] of [
          ['one-pass', concat([ops, lit, sig]), openpgp.enums.compression.uncompressed],
          ['one-pass, zlib', concat([ops, lit, sig]), openpgp.enums.compression.zlib],
          ['prefix signature', concat([prefixSig, lit]), openpgp.enums.compression.uncompressed],
          ['prefix signature, zip', concat([prefixSig, lit]), openpgp.enums.compression.zip],
          ['compressed signed message', compressedSigned, openpgp.enums.compression.uncompressed],
        ] as const) {
          const r = await decide(inner, { compression, cipher });
          expect({ stage: r.stage, code: r.code }, `${label}, ${cipher}`).to.deep.equal({ stage: 'validate', code: null });
        }
      }
    });

    it('a forged packet of every type and version, alone or next to a valid signature, in every shape: rejected, nothing released', async () => {
      const before = await rows(fx.ledger, 'p1');
      const seen: Record<string, number> = {};
      let n = 0;
      const shapes = ['alone, one-pass', 'alone, prefix', 'beside, one-pass', 'beside, prefix', 'prefix beside one-pass', 'outside the compressed packet'] as const;
      for (const { type, name } of EVERY_SIGNATURE_TYPE) {
        for (const shape of shapes) {
          const seed = BASE_SEED + 2000 + n++;
          const rnd = new SeededRandom(seed);
          const version = rnd.pick(VERSIONS);
          const g = forgedSignature(issuer, rnd, { type, version });
          const gOps = (nested: boolean) => forgedOnePass(issuer, { type, nested });
          const outerFirst = rnd.int(2) === 1;
          const inner = {
            'alone, one-pass': () => concat([gOps(false), lit, g]),
            'alone, prefix': () => concat([g, lit]),
            // One-pass packets nest: the first one's signature comes last.
            'beside, one-pass': () => (outerFirst ? concat([gOps(true), ops, lit, sig, g]) : concat([ops.slice(0, -1), Uint8Array.of(0), gOps(false), lit, g, sig])),
            'beside, prefix': () => (outerFirst ? concat([g, prefixSig, lit]) : concat([prefixSig, g, lit])),
            'prefix beside one-pass': () => concat([g, ops, lit, sig]),
            'outside the compressed packet': () => (outerFirst ? concat([g, compressedSigned]) : concat([gOps(false), compressedSigned, g])),
          }[shape]();
          const compression = shape === 'outside the compressed packet' ? openpgp.enums.compression.uncompressed
            : rnd.pick([openpgp.enums.compression.uncompressed, openpgp.enums.compression.zlib, openpgp.enums.compression.zip]);
          const cipher = rnd.pick(CIPHERS);
          const label = `${name} (${hexType(type)}) v${version}, ${shape}${outerFirst ? ' (forged outer)' : ''}, compression ${compression}, ${cipher} [seed ${seed}]`;
          let r;
          try {
            r = await decide(inner, { compression, cipher });
          } catch (err) {
            throw new Error(`${label}: ${(err as Error).message}`);
          }
          await expectRefused(r.id, label);
          seen[r.code ?? 'none'] = (seen[r.code ?? 'none'] ?? 0) + 1;
        }
      }
      expect(await rows(fx.ledger, 'p1'), 'the partner\'s keys are exactly as before').to.deep.equal(before);
      expect(await fx.quarantineEntries()).to.deep.equal([]);
      console.log(`      ${n} forged batches: ${JSON.stringify(seen)}`);
    });
  });
});
