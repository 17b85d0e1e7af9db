// test-pass: once
/**
 * keys/pgp/pgp-inspect: what is accepted as a partner's public key. Keys are generated at test
 * time with openpgp.js and GnuPG (weak algorithms only GnuPG still makes).
 */
import { expect } from 'chai';
import { openpgp } from '../../../../keys/pgp/openpgp-lib.js';
import { inspectPublicKey, keyIdOf, shortFingerprint } from '../../../../keys/pgp/pgp-inspect.js';
import { genEccKey, rsaKey, GpgHome, DAY } from '../../../helpers/pgp-fixtures.js';
import { expectCode } from '../../../helpers/expect-code.js';

describe('keys/pgp/pgp-inspect', function () {
  this.timeout(60_000);
  let gpg: GpgHome;
  before(async () => {
    gpg = await GpgHome.create();
  });
  after(async () => {
    await gpg?.close();
  });

  it('accepts an openpgp.js Ed25519/Cv25519 key and describes it', async () => {
    const k = await genEccKey();
    const i = await inspectPublicKey(k.armoredPublic);
    expect(i.fingerprint).to.equal(k.fingerprint).and.to.match(/^[0-9a-f]{40}$/);
    expect(i.keyFingerprints).to.have.length(2);
    expect(i.keyFingerprints[0]).to.equal(k.fingerprint);
    expect(i.keyFingerprints.every((f) => f === f.toLowerCase())).to.equal(true);
    expect(i.algorithm).to.match(/ed25519/i);
    expect(i.expiresAt).to.equal(null);
    expect(i.createdAt.getTime()).to.equal(k.publicKey.getCreationTime().getTime());
    expect(i.armoredPublic).to.match(/^-----BEGIN PGP PUBLIC KEY BLOCK/);
  });

  it('accepts the binary form of the same key', async () => {
    const k = await genEccKey();
    expect((await inspectPublicKey(k.publicKey.write())).fingerprint).to.equal(k.fingerprint);
  });

  it('accepts RSA-3072 and reports its size', async () => {
    const k = await rsaKey();
    expect((await inspectPublicKey(k.armoredPublic)).algorithm).to.match(/rsa.*-3072$/);
  });

  it('reports the expiry of an expiring key', async () => {
    const k = await genEccKey({ keyExpirationTime: 10 * 24 * 3600 });
    const i = await inspectPublicKey(k.armoredPublic);
    expect(i.expiresAt).to.be.instanceOf(Date);
    expect(i.expiresAt!.getTime() - i.createdAt.getTime()).to.equal(10 * DAY);
  });

  it('a private key → key.invalid', async () => {
    const k = await genEccKey();
    await expectCode(inspectPublicKey(k.privateKey.armor()), 'key.invalid');
  });

  it('two keys in one file, garbage, an empty string, a message → key.invalid', async () => {
    const [a, b] = await Promise.all([genEccKey(), genEccKey()]);
    await expectCode(inspectPublicKey(`${a.armoredPublic}\n${b.armoredPublic}`), 'key.invalid');
    await expectCode(inspectPublicKey(Buffer.concat([a.publicKey.write(), b.publicKey.write()])), 'key.invalid');
    await expectCode(inspectPublicKey('not a key'), 'key.invalid');
    await expectCode(inspectPublicKey(''), 'key.invalid');
    const msg = await openpgp.encrypt({ message: await openpgp.createMessage({ text: 'x' }), encryptionKeys: a.publicKey });
    await expectCode(inspectPublicKey(msg), 'key.invalid');
  });

  it('an expired key → key.invalid now, valid as of a time inside its life', async () => {
    const k = await genEccKey({ date: new Date(Date.now() - 5 * DAY), keyExpirationTime: 24 * 3600 });
    await expectCode(inspectPublicKey(k.armoredPublic), 'key.invalid');
    expect((await inspectPublicKey(k.armoredPublic, new Date(Date.now() - 4.5 * DAY))).fingerprint).to.equal(k.fingerprint);
  });

  it('a revoked key → key.invalid', async () => {
    const k = await genEccKey();
    const { publicKey } = await openpgp.revokeKey({ key: k.privateKey, format: 'armored' });
    await expectCode(inspectPublicKey(publicKey), 'key.invalid');
  });

  it('GnuPG Ed25519 (future-default) and NIST P-256 keys are accepted', async () => {
    for (const [uid, algo] of [['ed <ed@example.invalid>', 'future-default'], ['p256 <p256@example.invalid>', 'nistp256']] as const) {
      const fpr = await gpg.genKey(uid, algo);
      expect((await inspectPublicKey(await gpg.exportPublic(fpr))).fingerprint).to.equal(fpr);
    }
  });

  it('GnuPG RSA-1024 → key.weak', async () => {
    const fpr = await gpg.genKey('rsa1024 <rsa1024@example.invalid>', 'rsa1024');
    await expectCode(inspectPublicKey(await gpg.exportPublic(fpr)), 'key.weak');
  });

  it('GnuPG RSA-3072 primary with an RSA-1024 encryption subkey → key.weak', async () => {
    const fpr = await gpg.genKey('weaksub <weaksub@example.invalid>', 'rsa3072', 'sign');
    await gpg.run(['--quick-add-key', fpr, 'rsa1024', 'encr', 'never']);
    await expectCode(inspectPublicKey(await gpg.exportPublic(fpr)), 'key.weak');
  });

  it('GnuPG DSA-2048 → key.weak', async () => {
    const fpr = await gpg.genKey('dsa <dsa@example.invalid>', 'dsa2048', 'sign');
    await expectCode(inspectPublicKey(await gpg.exportPublic(fpr)), 'key.weak');
  });

  it('GnuPG Ed25519 primary with an ElGamal subkey → key.weak', async () => {
    const fpr = await gpg.genKey('elg <elg@example.invalid>', 'ed25519', 'sign');
    await gpg.run(['--quick-add-key', fpr, 'elg2048', 'encr', 'never']);
    await expectCode(inspectPublicKey(await gpg.exportPublic(fpr)), 'key.weak');
  });

  it('GnuPG secp256k1 (a curve not on the list) → key.weak', async () => {
    const fpr = await gpg.genKey('k1 <k1@example.invalid>', 'secp256k1', 'sign');
    await expectCode(inspectPublicKey(await gpg.exportPublic(fpr)), 'key.weak');
  });

  it('keyIdOf / shortFingerprint', () => {
    const fpr = 'AB'.repeat(12) + '0123456789ABCDEF';
    expect(keyIdOf(fpr)).to.equal('0123456789abcdef');
    expect(shortFingerprint(fpr.toLowerCase())).to.equal('0x0123456789ABCDEF');
  });
});
