/**
 * keys/partner-key-submission: partner self-service key rotation with keys and detached
 * signatures made by gpg, judged against a real ledger.
 */
import { expect } from 'chai';
import { submitPartnerKey, type SubmitPartnerKeyDeps } from '../../../keys/partner-key-submission.js';
import { addPartnerKey, ackEncryptionKey, loadPartnerKeys, partnerKeyState } from '../../../keys/partner-keys.js';
import type { Ledger } from '../../../gateway/core/ledger/index.js';
import { GpgHome } from '../../helpers/pgp-fixtures.js';
import { tempLedger } from '../../helpers/key-unit.js';
import { codeOf } from '../../helpers/expect-code.js';

const POLICY = { maxAgeSeconds: 7 * 24 * 3600, futureSkewSeconds: 300 };
const DELAY = 3600;


describe('keys/partner-key-submission (gpg-made keys)', function () {
  this.timeout(120_000);
  let close: () => Promise<void>;
  let ledger: Ledger;
  let gpg: GpgHome;
  let oldFp: string;
  let newFp: string;
  let newKey: string;
  let deps: SubmitPartnerKeyDeps;
  const detachSign = async (signer: string, data: string, armor = false) =>
    (await gpg.run(['--local-user', signer, ...(armor ? ['--armor'] : []), '--detach-sign', '--output', '-'], data)).stdout;

  before(async () => {
    gpg = await GpgHome.create();
    oldFp = await gpg.genKey('Old <old@p1.invalid>');
    newFp = await gpg.genKey('New <new@p1.invalid>');
    newKey = await gpg.exportPublic(newFp);
  });
  after(async () => {
    await gpg?.close();
  });
  beforeEach(async () => {
    ({ ledger, close } = await tempLedger('pgw-pks-'));
    await ledger.partners.create({ id: 'p1', name: 'P1' });
    await ledger.partners.create({ id: 'p2', name: 'P2' });
    await addPartnerKey(ledger, 'p1', await gpg.exportPublic(oldFp));
    deps = { ledger, signature: POLICY, activationDelaySeconds: DELAY };
  });
  afterEach(async () => {
    await close?.();
  });

  it('a new key signed by the active key is added as pending, activates after the delay, and is audited', async () => {
    const t0 = Date.now();
    // Bytes, as the channels hand them over (an HTTPS body, an SFTP file).
    const r = await submitPartnerKey(deps, { partnerId: 'p1', armoredKey: new TextEncoder().encode(newKey), signature: await detachSign(oldFp, newKey), channel: 'https' });
    expect(r).to.include({ partnerId: 'p1', fingerprint: newFp, signedBy: oldFp, channel: 'https' });
    expect(new Date(r.activatesAt).getTime()).to.be.within(t0 + DELAY * 1000 - 1000, Date.now() + DELAY * 1000);
    const row = (await ledger.pgpKeys.get(newFp))!;
    expect(partnerKeyState(row)).to.equal('pending');
    // Acks stay with the old key until the new one counts; then they switch to the newest.
    const keys = await loadPartnerKeys(ledger, 'p1');
    expect((await ackEncryptionKey(keys))!.row.fingerprint).to.equal(oldFp);
    expect((await ackEncryptionKey(keys, new Date(Date.now() + (DELAY + 60) * 1000)))!.row.fingerprint).to.equal(newFp);
    const [ev] = await ledger.audit.list({ action: 'partner_key.submitted' });
    expect(ev).to.include({ actor: 'partner:p1', target: 'p1' });
    expect(JSON.parse(ev!.detail!)).to.include({ fingerprint: newFp, signedBy: oldFp, channel: 'https' });
    expect((await ledger.audit.verify()).ok).to.equal(true);
  });

  it('accepts an armored detached signature and a binary key file as sent', async () => {
    const binaryKey = new Uint8Array((await gpg.run(['--export', newFp])).stdout);
    const sig = (await gpg.run(['--local-user', oldFp, '--armor', '--detach-sign', '--output', '-'], binaryKey)).stdout;
    const r = await submitPartnerKey(deps, { partnerId: 'p1', armoredKey: binaryKey, signature: sig.toString('utf8'), channel: 'sftp' });
    expect(r.fingerprint).to.equal(newFp);
  });

  it('refuses unsigned submissions: key.submission_unsigned', async () => {
    expect(await codeOf(submitPartnerKey(deps, { partnerId: 'p1', armoredKey: newKey, signature: null, channel: 'sftp' }))).to.equal('key.submission_unsigned');
    expect(await codeOf(submitPartnerKey(deps, { partnerId: 'p1', armoredKey: newKey, signature: '', channel: 'sftp' }))).to.equal('key.submission_unsigned');
    expect(await ledger.pgpKeys.get(newFp)).to.equal(undefined);
    const refused = await ledger.audit.list({ action: 'partner_key.submission_refused' });
    expect(refused.map((e) => JSON.parse(e.detail!).code)).to.deep.equal(['key.submission_unsigned', 'key.submission_unsigned']);
  });

  it('refuses wrongly signed submissions: key.submission_bad_signature', async () => {
    const stranger = await gpg.genKey('Stranger <s@x.invalid>');
    const cases: [string, Uint8Array | string][] = [
      ['signed by an unregistered key', await detachSign(stranger, newKey)],
      ['signed by the new key itself', await detachSign(newFp, newKey)],
      ['signature over other bytes', await detachSign(oldFp, `${newKey}\n`)],
      ['not a signature at all', 'hello'],
    ];
    for (const [what, sig] of cases) {
      expect(await codeOf(submitPartnerKey(deps, { partnerId: 'p1', armoredKey: newKey, signature: sig, channel: 'sftp' })), what).to.equal('key.submission_bad_signature');
    }
    // Another partner's real, active key does not authorise a key for p1.
    await addPartnerKey(ledger, 'p2', await gpg.exportPublic(stranger));
    expect(await codeOf(submitPartnerKey(deps, { partnerId: 'p1', armoredKey: newKey, signature: await detachSign(stranger, newKey), channel: 'sftp' }))).to.equal('key.submission_bad_signature');
    // A revoked key no longer authorises anything.
    await ledger.pgpKeys.revoke(oldFp, new Date(), 'test');
    expect(await codeOf(submitPartnerKey(deps, { partnerId: 'p1', armoredKey: newKey, signature: await detachSign(oldFp, newKey), channel: 'sftp' }))).to.equal('key.submission_bad_signature');
    expect(await ledger.pgpKeys.get(newFp)).to.equal(undefined);
  });

  it('refuses a duplicate (also when another partner holds the key) and a weak key', async () => {
    const oldKey = await gpg.exportPublic(oldFp);
    expect(await codeOf(submitPartnerKey(deps, { partnerId: 'p1', armoredKey: oldKey, signature: await detachSign(oldFp, oldKey), channel: 'sftp' }))).to.equal('key.submission_duplicate');
    await submitPartnerKey(deps, { partnerId: 'p1', armoredKey: newKey, signature: await detachSign(oldFp, newKey), channel: 'sftp' });
    expect(await codeOf(submitPartnerKey(deps, { partnerId: 'p1', armoredKey: newKey, signature: await detachSign(oldFp, newKey), channel: 'sftp' }))).to.equal('key.submission_duplicate');

    const weakFp = await gpg.genKey('Weak <weak@p1.invalid>', 'rsa1024');
    const weak = await gpg.exportPublic(weakFp);
    expect(await codeOf(submitPartnerKey(deps, { partnerId: 'p1', armoredKey: weak, signature: await detachSign(oldFp, weak), channel: 'sftp' }))).to.equal('key.weak');
  });

  it('refuses oversized input and unknown or disabled partners', async () => {
    const big = 'x'.repeat(70 * 1024);
    expect(await codeOf(submitPartnerKey(deps, { partnerId: 'p1', armoredKey: big, signature: 'x', channel: 'sftp' }))).to.equal('key.submission_too_large');
    const sig = await detachSign(oldFp, newKey);
    expect(await codeOf(submitPartnerKey(deps, { partnerId: 'nobody', armoredKey: newKey, signature: sig, channel: 'sftp' }))).to.equal('partner.not_found');
    await ledger.partners.setStatus('p1', 'disabled');
    expect(await codeOf(submitPartnerKey(deps, { partnerId: 'p1', armoredKey: newKey, signature: sig, channel: 'sftp' }))).to.equal('partner.disabled');
  });
});
