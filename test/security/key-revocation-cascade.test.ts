/**
 * A thief who holds a partner's signing key (and its SSH key or API token) submits their own
 * key, signed by the stolen one. The delay before a submitted key counts exists so that the
 * partner can react: when the partner (or the operator) revokes the stolen key, the thief's
 * pending key must go with it — by operator revocation, and by the partner's revocation
 * certificate (as sent over SFTP to /keys/incoming/revoke.asc) — while the partner's own
 * pending key, signed by another key, stays. Keys and signatures are made by gpg.
 */
import { expect } from 'chai';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { submitPartnerKey, type SubmitPartnerKeyDeps } from '../../keys/partner-key-submission.js';
import { addPartnerKey, ackEncryptionKey, loadPartnerKeys, partnerKeyState } from '../../keys/partner-keys.js';
import { applyRevocationCertificate } from '../../keys/partner-revocation.js';
import { revokePartnerPgpKey } from '../../gateway/admin/key-admin.js';
import type { Ledger } from '../../gateway/core/ledger/index.js';
import { GpgHome } from '../helpers/pgp-fixtures.js';
import { tempLedger } from '../helpers/key-unit.js';
import { codeOf } from '../helpers/expect-code.js';

const POLICY = { maxAgeSeconds: 7 * 24 * 3600, futureSkewSeconds: 300 };
const DELAY = 24 * 3600;

describe('security: revoking a partner key cancels the pending keys it signed for', function () {
  this.timeout(120_000);
  let gpg: GpgHome;
  let stolen: string; // the partner's key the thief holds
  let other: string; // the partner's second key, not stolen
  let thief: string;
  let own: string; // the partner's own next key
  let close: () => Promise<void>;
  let ledger: Ledger;
  let deps: SubmitPartnerKeyDeps;

  const detachSign = async (signer: string, data: string) =>
    (await gpg.run(['--local-user', signer, '--detach-sign', '--output', '-'], data)).stdout;
  const submit = async (signer: string, fp: string, now?: Date) => {
    const key = await gpg.exportPublic(fp);
    return submitPartnerKey(now ? { ...deps, now: () => now } : deps, { partnerId: 'p1', armoredKey: key, signature: await detachSign(signer, key), channel: 'sftp' });
  };
  const state = async (fp: string, at = new Date()) => partnerKeyState((await ledger.pgpKeys.get(fp))!, at);
  const afterDelay = () => new Date(Date.now() + (DELAY + 3600) * 1000);

  before(async () => {
    gpg = await GpgHome.create();
    stolen = await gpg.genKey('Partner <a@p1.invalid>');
    other = await gpg.genKey('Partner second <b@p1.invalid>');
    thief = await gpg.genKey('Thief <t@thief.invalid>');
    own = await gpg.genKey('Partner next <c@p1.invalid>');
  });
  after(async () => {
    await gpg?.close();
  });
  beforeEach(async () => {
    ({ ledger, close } = await tempLedger('pgw-cascade-'));
    await ledger.partners.create({ id: 'p1', name: 'P1' });
    // Registered a day ago (the keys themselves are minutes old: made for this test).
    const since = { activateAt: new Date(Date.now() - DELAY * 1000) };
    await addPartnerKey(ledger, 'p1', await gpg.exportPublic(stolen), since);
    await addPartnerKey(ledger, 'p1', await gpg.exportPublic(other), since);
    deps = { ledger, signature: POLICY, activationDelaySeconds: DELAY };
    expect((await submit(stolen, thief)).signedBy).to.equal(stolen);
    expect((await submit(other, own)).signedBy).to.equal(other);
    expect(await state(thief)).to.equal('pending');
    expect(await state(thief, afterDelay()), 'without the fix the thief\'s key would count after the delay').to.equal('active');
  });
  afterEach(async () => {
    await close?.();
  });

  /** The thief's key never counts, is audited as cancelled, and the partner's own pending key is untouched. */
  async function expectThiefCancelled(actor: string): Promise<void> {
    expect(await state(thief)).to.equal('revoked');
    expect(await state(thief, afterDelay())).to.equal('revoked');
    expect((await ledger.pgpKeys.get(thief))!.revocation_reason).to.include('cancelled').and.include(stolen);
    const keys = await loadPartnerKeys(ledger, 'p1');
    expect((await ackEncryptionKey(keys, afterDelay()))!.row.fingerprint, 'acks are never encrypted to the thief\'s key').to.equal(own);
    expect(await state(own)).to.equal('pending');
    expect(await state(own, afterDelay())).to.equal('active');
    const cancelled = await ledger.audit.list({ action: 'partner_key.cancelled' });
    expect(cancelled).to.have.length(1);
    expect(cancelled[0]).to.include({ actor, target: 'p1' });
    expect(JSON.parse(cancelled[0]!.detail!)).to.include({ fingerprint: thief, signedBy: stolen, reason: 'signer_revoked' });
    expect((await ledger.audit.verify()).ok).to.equal(true);
  }

  it('operator revocation (pgw keys partner revoke) cancels them and says so', async () => {
    const r = await revokePartnerPgpKey(ledger, { partnerId: 'p1', fingerprint: stolen, reason: 'stolen laptop', actor: 'cli:ops' });
    expect(r.keysCancelled).to.deep.equal([thief]);
    await expectThiefCancelled('cli:ops');
  });

  it('the partner\'s revocation certificate (self-service, as over SFTP) cancels them and says so', async () => {
    const certificate = await fsp.readFile(path.join(gpg.dir, 'openpgp-revocs.d', `${stolen.toUpperCase()}.rev`), 'utf8');
    const r = await applyRevocationCertificate(ledger, { partnerId: 'p1', certificate, actor: 'partner:p1', channel: 'sftp' });
    expect(r).to.include({ fingerprint: stolen, changed: true });
    expect(r.keysCancelled).to.deep.equal([thief]);
    await expectThiefCancelled('partner:p1');
  });

  it('a submission verified while its signer was being revoked is cancelled as soon as it is stored', async () => {
    // The revocation is stored after this submission's verification judged the signer active
    // and before its key is stored, so the revocation's own look for pending keys finds
    // nothing: simulated by a revocation time just after the verification's "now".
    const thief2 = await gpg.genKey('Thief again <t2@thief.invalid>');
    const now = new Date();
    await ledger.pgpKeys.revoke(stolen, new Date(now.getTime() + 1), 'stolen laptop');
    expect(await codeOf(submit(stolen, thief2, now))).to.equal('key.submission_bad_signature');
    expect(await state(thief2, afterDelay())).to.equal('revoked');
    expect(JSON.parse((await ledger.audit.list({ action: 'partner_key.cancelled' }))[0]!.detail!)).to.include({ fingerprint: thief2, signedBy: stolen });
    expect(await state(own, afterDelay())).to.equal('active');
  });
});
