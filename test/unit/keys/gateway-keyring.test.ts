/**
 * keys/gateway-keyring: the gateway's own keys, their states through a rotation, and the
 * passphrase that protects them at rest.
 */
import { expect } from 'chai';
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openpgp } from '../../../keys/pgp/openpgp-lib.js';
import { createGatewayKey, GatewayKeyring } from '../../../keys/gateway-keyring.js';
import { Ledger } from '../../../gateway/core/ledger/index.js';
import { silentLogger } from '../../../gateway/core/logger.js';
import { KEY_PASSPHRASE, DAY } from '../../helpers/pgp-fixtures.js';
import { expectCode } from '../../helpers/expect-code.js';

describe('keys/gateway-keyring', function () {
  this.timeout(60_000);
  let dir: string;
  let ledger: Ledger;
  beforeEach(async () => {
    dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'pgw-gk-'));
    ledger = await Ledger.open(`sqlite:${path.join(dir, 'ledger.db')}`, silentLogger);
  });
  afterEach(async () => {
    await ledger?.close();
    await fsp.rm(dir, { recursive: true, force: true });
  });

  it('no key → gateway.not_initialised; a wrong passphrase → key.passphrase_wrong', async () => {
    await expectCode(GatewayKeyring.load(ledger, KEY_PASSPHRASE), 'gateway.not_initialised');
    await createGatewayKey(ledger, KEY_PASSPHRASE);
    await expectCode(GatewayKeyring.load(ledger, 'not-the-passphrase'), 'key.passphrase_wrong');
  });

  it('the private key is stored encrypted, as a curve25519 v4 key with an encryption subkey', async () => {
    const row = await createGatewayKey(ledger, KEY_PASSPHRASE);
    expect(row.owner).to.equal('gateway');
    const priv = await openpgp.readPrivateKey({ armoredKey: row.private_armored! });
    expect(priv.isDecrypted()).to.equal(false);
    expect(priv.keyPacket.version).to.equal(4);
    expect(JSON.parse(row.key_fingerprints)).to.have.length(2);
    const pub = await openpgp.readKey({ armoredKey: row.public_armored });
    expect(pub.isPrivate()).to.equal(false);
    await pub.getEncryptionKey();
  });

  it('states through a rotation: active → decrypt-only → retired; next decrypts but does not sign', async () => {
    const now = Date.now();
    const a = await createGatewayKey(ledger, KEY_PASSPHRASE, { now: new Date(now - 10 * DAY) });
    const b = await createGatewayKey(ledger, KEY_PASSPHRASE, { activateAt: new Date(now + DAY) });
    const ring = await GatewayKeyring.load(ledger, KEY_PASSPHRASE);
    const byFp = (fp: string) => ring.all().find((k) => k.row.fingerprint === fp)!;
    const t = new Date(now);
    expect(ring.state(byFp(a.fingerprint), t)).to.equal('active');
    expect(ring.state(byFp(b.fingerprint), t)).to.equal('next');
    expect(ring.signingKey(t).row.fingerprint).to.equal(a.fingerprint);
    expect(ring.decryptionKeys(t).map((k) => k.row.fingerprint).sort()).to.deep.equal([a.fingerprint, b.fingerprint].sort());
    expect(ring.publicArmored(t)).to.include(a.public_armored.trim()).and.to.include(b.public_armored.trim());

    const later = new Date(now + 2 * DAY);
    expect(ring.state(byFp(b.fingerprint), later)).to.equal('active');
    expect(ring.state(byFp(a.fingerprint), later)).to.equal('decrypt-only');
    expect(ring.signingKey(later).row.fingerprint).to.equal(b.fingerprint);
    expect(ring.publicArmored(later)).to.not.include(a.public_armored.trim());

    // retire A (another process writes the ledger; refresh picks it up)
    await ledger.handle.db.updateTable('pgp_keys').set({ not_after: new Date(now + DAY).toISOString() }).where('fingerprint', '=', a.fingerprint).execute();
    await ring.refresh();
    expect(ring.state(byFp(a.fingerprint), later)).to.equal('retired');
    expect(ring.decryptionKeys(later).map((k) => k.row.fingerprint)).to.deep.equal([b.fingerprint]);
    expect(ring.findByKeyId(JSON.parse(a.key_fingerprints)[1].slice(-16).toUpperCase())?.row.fingerprint, 'found by subkey id').to.equal(a.fingerprint);

    await ledger.pgpKeys.revoke(b.fingerprint, new Date(now + 1.5 * DAY), 'test');
    await ring.refresh();
    expect(ring.state(byFp(b.fingerprint), later)).to.equal('revoked');
    expect(() => ring.signingKey(later)).to.throw().with.property('code', 'gateway.not_initialised');
  });
});
