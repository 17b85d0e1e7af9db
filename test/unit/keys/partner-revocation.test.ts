/**
 * keys/partner-revocation: gpg's own revocation certificates applied to registered keys.
 */
import { expect } from 'chai';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { applyRevocationCertificate } from '../../../keys/partner-revocation.js';
import { addPartnerKey, partnerKeyState } from '../../../keys/partner-keys.js';
import type { Ledger } from '../../../gateway/core/ledger/index.js';
import { GpgHome } from '../../helpers/pgp-fixtures.js';
import { tempLedger } from '../../helpers/key-unit.js';
import { codeOf } from '../../helpers/expect-code.js';


describe('keys/partner-revocation (gpg revocation certificates)', function () {
  this.timeout(60_000);
  let close: () => Promise<void>;
  let ledger: Ledger;
  let gpg: GpgHome;
  let a: string;
  let b: string;
  const cert = (fp: string) => fsp.readFile(path.join(gpg.dir, 'openpgp-revocs.d', `${fp.toUpperCase()}.rev`), 'utf8');

  before(async () => {
    gpg = await GpgHome.create();
    a = await gpg.genKey('A <a@p1.invalid>');
    b = await gpg.genKey('B <b@p2.invalid>');
  });
  after(async () => {
    await gpg?.close();
  });
  beforeEach(async () => {
    ({ ledger, close } = await tempLedger('pgw-rev-'));
    await ledger.partners.create({ id: 'p1', name: 'P1' });
    await ledger.partners.create({ id: 'p2', name: 'P2' });
    await addPartnerKey(ledger, 'p1', await gpg.exportPublic(a));
    await addPartnerKey(ledger, 'p2', await gpg.exportPublic(b));
  });
  afterEach(async () => {
    await close?.();
  });

  it('the certificate gpg stored (with its protective colon) revokes the key from now, audited; a second time changes nothing', async () => {
    const t0 = Date.now();
    const r = await applyRevocationCertificate(ledger, { partnerId: 'p1', certificate: await cert(a), actor: 'partner:p1', channel: 'sftp' });
    expect(r).to.include({ fingerprint: a, changed: true });
    // Not the certificate's own (key-creation) time: from when it was applied.
    expect(Date.parse(r.revokedAt)).to.be.at.least(t0 - 5);
    expect(partnerKeyState((await ledger.pgpKeys.get(a))!)).to.equal('revoked');
    const [ev] = await ledger.audit.list({ action: 'partner_key.revoked' });
    expect(JSON.parse(ev!.detail!)).to.include({ fingerprint: a, via: 'certificate', channel: 'sftp' });
    expect((await applyRevocationCertificate(ledger, { partnerId: 'p1', certificate: await cert(a), actor: 'partner:p1', channel: 'sftp' })).changed).to.equal(false);
  });

  it('refuses another partner\'s certificate, a mismatching operator fingerprint, and a non-certificate: key.revocation_invalid', async () => {
    expect(await codeOf(applyRevocationCertificate(ledger, { partnerId: 'p1', certificate: await cert(b), actor: 'partner:p1', channel: 'sftp' }))).to.equal('key.revocation_invalid');
    expect(await codeOf(applyRevocationCertificate(ledger, { partnerId: 'p1', certificate: await cert(a), actor: 'cli', channel: 'cli', expectFingerprint: b }))).to.equal('key.revocation_invalid');
    const detached = (await gpg.run(['--local-user', a, '--armor', '--detach-sign', '--output', '-'], 'hello')).stdout.toString('utf8');
    expect(await codeOf(applyRevocationCertificate(ledger, { partnerId: 'p1', certificate: detached, actor: 'partner:p1', channel: 'sftp' }))).to.equal('key.revocation_invalid');
    expect(await codeOf(applyRevocationCertificate(ledger, { partnerId: 'p1', certificate: 'junk', actor: 'partner:p1', channel: 'sftp' }))).to.equal('key.revocation_invalid');
    expect(partnerKeyState((await ledger.pgpKeys.get(a))!)).to.equal('active');
    expect(partnerKeyState((await ledger.pgpKeys.get(b))!)).to.equal('active');
  });
});
