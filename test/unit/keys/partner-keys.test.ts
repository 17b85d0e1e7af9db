/**
 * keys/partner-keys: registration of partners' keys and the signature policy
 * (judgeSignature) — each rule, its boundary and the order in which rules apply.
 */
import { expect } from 'chai';
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  addPartnerKey, loadPartnerKeys, findPartnerKeyByKeyId, judgeSignature, ackEncryptionKey, type PartnerKey,
} from '../../../keys/partner-keys.js';
import { Ledger, type PgpKeyRow } from '../../../gateway/core/ledger/index.js';
import { silentLogger } from '../../../gateway/core/logger.js';
import { isPgwError } from '../../../gateway/core/errors.js';
import { genEccKey, GpgHome, DAY } from '../../helpers/pgp-fixtures.js';
import { expectCode } from '../../helpers/expect-code.js';

const H = 3600_000;
const POLICY = { maxAgeSeconds: 7 * 24 * 3600, futureSkewSeconds: 300 };
const NOW = new Date('2026-03-10T12:00:00.000Z');
const at = (ms: number) => new Date(NOW.getTime() + ms);
const iso = (ms: number) => at(ms).toISOString();

function keyWith(row: Partial<PgpKeyRow>): PartnerKey {
  const full: PgpKeyRow = {
    fingerprint: 'a'.repeat(24) + '0123456789abcdef', owner: 'partner', partner_id: 'p1',
    key_fingerprints: '[]', algorithm: 'eddsaLegacy/ed25519Legacy', public_armored: '', private_armored: null,
    key_created_at: iso(-30 * DAY), not_before: iso(-30 * DAY), not_after: null, revoked_at: null,
    revocation_reason: null, signed_by: null, created_at: iso(-30 * DAY), ...row,
  };
  return { row: full, key: null as never, fingerprints: [full.fingerprint] };
}

/** The code judgeSignature throws, or 'ok'. */
function judge(k: PartnerKey, signedAt: Date, policy = POLICY): string {
  try {
    judgeSignature(k, signedAt, NOW, policy);
    return 'ok';
  } catch (e) {
    if (!isPgwError(e)) throw e;
    return e.code;
  }
}

describe('keys/partner-keys', function () {
  this.timeout(60_000);

  describe('judgeSignature', () => {
    const plain = keyWith({});

    it('accepts a signature made now', () => {
      expect(judge(plain, NOW)).to.equal('ok');
    });

    it('future: up to the skew is fine, one second more is signature.future', () => {
      expect(judge(plain, at(300_000))).to.equal('ok');
      expect(judge(plain, at(301_000))).to.equal('signature.future');
      expect(judge(plain, at(DAY))).to.equal('signature.future');
      expect(judge(plain, at(60_000), { ...POLICY, futureSkewSeconds: 0 })).to.equal('signature.future');
    });

    it('age: exactly the window is fine, older is signature.too_old', () => {
      expect(judge(plain, at(-7 * DAY))).to.equal('ok');
      expect(judge(plain, at(-7 * DAY - 1))).to.equal('signature.too_old');
      expect(judge(plain, at(-2 * H), { ...POLICY, maxAgeSeconds: 3600 })).to.equal('signature.too_old');
    });

    it('revoked: from revoked_at on, whatever time the signature claims', () => {
      expect(judge(keyWith({ revoked_at: iso(-H) }), NOW)).to.equal('key.revoked');
      expect(judge(keyWith({ revoked_at: iso(-H) }), at(-2 * H)), 'back-dated before the revocation').to.equal('key.revoked');
      expect(judge(keyWith({ revoked_at: iso(0) }), at(-1000))).to.equal('key.revoked');
      expect(judge(keyWith({ revoked_at: iso(H) }), NOW), 'a revocation scheduled for later').to.equal('ok');
    });

    it('not yet active: before our not_before or before the key was created', () => {
      expect(judge(keyWith({ not_before: iso(H) }), NOW)).to.equal('key.not_yet_active');
      expect(judge(keyWith({ not_before: iso(-H) }), at(-2 * H))).to.equal('key.not_yet_active');
      expect(judge(keyWith({ not_before: iso(-H) }), at(-H))).to.equal('ok');
      expect(judge(keyWith({ key_created_at: iso(-H), not_before: iso(-2 * DAY) }), at(-2 * H)), 'signature before key creation').to.equal('key.not_yet_active');
      expect(judge(keyWith({ key_created_at: iso(-H), not_before: iso(-H) }), at(-H))).to.equal('ok');
    });

    it('expired: our not_after at or before the signature, or at or before now', () => {
      expect(judge(keyWith({ not_after: iso(-H) }), NOW)).to.equal('key.expired');
      expect(judge(keyWith({ not_after: iso(-H) }), at(-2 * H)), 'back-dated into the validity window').to.equal('key.expired');
      expect(judge(keyWith({ not_after: iso(0) }), at(-1000))).to.equal('key.expired');
      expect(judge(keyWith({ not_after: iso(-H) }), at(-H))).to.equal('key.expired');
      expect(judge(keyWith({ not_after: iso(H) }), NOW)).to.equal('ok');
    });

    it('order: time window first, then revoked, not yet active, expired', () => {
      const everything = keyWith({ revoked_at: iso(-H), not_before: iso(H), not_after: iso(-H) });
      expect(judge(everything, at(DAY))).to.equal('signature.future');
      expect(judge(everything, at(-8 * DAY))).to.equal('signature.too_old');
      expect(judge(everything, NOW)).to.equal('key.revoked');
      expect(judge(keyWith({ not_before: iso(H), not_after: iso(-H) }), NOW)).to.equal('key.not_yet_active');
    });

    it('details carry the fingerprint and times, never more', () => {
      try {
        judgeSignature(keyWith({ revoked_at: iso(-H) }), NOW, NOW, POLICY);
        expect.fail('should throw');
      } catch (e) {
        if (!isPgwError(e)) throw e;
        expect(Object.keys(e.details).sort()).to.deep.equal(['fingerprint', 'notAfter', 'notBefore', 'revokedAt', 'signedAt']);
      }
    });
  });

  describe('registration', () => {
    let dir: string;
    let ledger: Ledger;
    before(async () => {
      dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'pgw-pk-'));
      ledger = await Ledger.open(`sqlite:${path.join(dir, 'ledger.db')}`, silentLogger);
      await ledger.partners.create({ id: 'p1', name: 'P1' });
      await ledger.partners.create({ id: 'p2', name: 'P2' });
    });
    after(async () => {
      await ledger?.close();
      await fsp.rm(dir, { recursive: true, force: true });
    });

    it('stores fingerprints, algorithm and a window from the key itself', async () => {
      const k = await genEccKey({ keyExpirationTime: 30 * 24 * 3600 });
      const row = await addPartnerKey(ledger, 'p1', k.armoredPublic);
      expect(row.fingerprint).to.equal(k.fingerprint);
      expect(row.owner).to.equal('partner');
      expect(row.private_armored).to.equal(null);
      const fps = JSON.parse(row.key_fingerprints) as string[];
      expect(fps).to.have.length(2);
      expect(fps).to.include(k.publicKey.getSubkeys()[0]!.getFingerprint());
      expect(row.not_before).to.equal(k.publicKey.getCreationTime().toISOString());
      expect(row.key_created_at).to.equal(row.not_before);
      expect(Date.parse(row.not_after!) - Date.parse(row.key_created_at)).to.equal(30 * DAY);
      expect((await ledger.pgpKeys.get(k.fingerprint))?.partner_id).to.equal('p1');
    });

    it('activateAt sets not_before', async () => {
      const k = await genEccKey();
      const when = new Date(Date.now() + DAY);
      expect((await addPartnerKey(ledger, 'p1', k.armoredPublic, { activateAt: when })).not_before).to.equal(when.toISOString());
    });

    it('expiresAt ends our window early, never later than the key\'s own expiry', async () => {
      const k = await genEccKey({ keyExpirationTime: 30 * 24 * 3600 });
      const own = k.publicKey.getCreationTime().getTime() + 30 * DAY;
      const early = new Date(Date.now() + 5 * DAY);
      expect((await addPartnerKey(ledger, 'p1', k.armoredPublic, { expiresAt: early })).not_after).to.equal(early.toISOString());
      const k2 = await genEccKey({ keyExpirationTime: 30 * 24 * 3600 });
      const own2 = k2.publicKey.getCreationTime().getTime() + 30 * DAY;
      expect(Date.parse((await addPartnerKey(ledger, 'p1', k2.armoredPublic, { expiresAt: new Date(Date.now() + 90 * DAY) })).not_after!)).to.equal(own2);
      expect(own).to.be.greaterThan(early.getTime());
    });

    it('unknown partner → partner.not_found; the same key twice, or for another partner → key.exists', async () => {
      const k = await genEccKey();
      await expectCode(addPartnerKey(ledger, 'nobody', k.armoredPublic), 'partner.not_found');
      await addPartnerKey(ledger, 'p1', k.armoredPublic);
      await expectCode(addPartnerKey(ledger, 'p1', k.armoredPublic), 'key.exists');
      await expectCode(addPartnerKey(ledger, 'p2', k.armoredPublic), 'key.exists');
    });

    it('a weak or private key is refused and nothing is stored', async () => {
      const gpg = await GpgHome.create();
      try {
        const fpr = await gpg.genKey('weak <weak@example.invalid>', 'rsa1024');
        await expectCode(addPartnerKey(ledger, 'p1', await gpg.exportPublic(fpr)), 'key.weak');
        expect(await ledger.pgpKeys.get(fpr)).to.equal(undefined);
      } finally {
        await gpg.close();
      }
      const k = await genEccKey();
      await expectCode(addPartnerKey(ledger, 'p1', k.privateKey.armor()), 'key.invalid');
      expect(await ledger.pgpKeys.get(k.fingerprint)).to.equal(undefined);
    });

    it("loadPartnerKeys returns one partner's keys only; lookup by primary or subkey id, any case", async () => {
      const mine = await genEccKey();
      const theirs = await genEccKey();
      await addPartnerKey(ledger, 'p2', mine.armoredPublic);
      const keys = await loadPartnerKeys(ledger, 'p2');
      expect(keys.map((k) => k.row.partner_id)).to.satisfy((a: string[]) => a.every((p) => p === 'p2'));
      const primaryId = mine.publicKey.getKeyID().toHex();
      const subId = mine.publicKey.getSubkeys()[0]!.getKeyID().toHex();
      expect(findPartnerKeyByKeyId(keys, primaryId)?.row.fingerprint).to.equal(mine.fingerprint);
      expect(findPartnerKeyByKeyId(keys, subId.toUpperCase())?.row.fingerprint).to.equal(mine.fingerprint);
      expect(findPartnerKeyByKeyId(keys, theirs.publicKey.getKeyID().toHex())).to.equal(undefined);
      expect(findPartnerKeyByKeyId(await loadPartnerKeys(ledger, 'p1'), primaryId), "not among p1's keys").to.equal(undefined);
    });

    it('ackEncryptionKey: the newest usable key; revoked, retired and not-yet-active keys are skipped', async () => {
      await ledger.partners.create({ id: 'p3', name: 'P3' });
      const [old, current, next, revoked] = await Promise.all([
        genEccKey({ date: new Date(Date.now() - 10 * DAY) }), genEccKey({ date: new Date(Date.now() - 2 * DAY) }), genEccKey(), genEccKey(),
      ]);
      await addPartnerKey(ledger, 'p3', old.armoredPublic);
      await addPartnerKey(ledger, 'p3', current.armoredPublic);
      await addPartnerKey(ledger, 'p3', next.armoredPublic, { activateAt: new Date(Date.now() + DAY) });
      await addPartnerKey(ledger, 'p3', revoked.armoredPublic);
      await ledger.pgpKeys.revoke(revoked.fingerprint, new Date(Date.now() - 1000), null);
      expect((await ackEncryptionKey(await loadPartnerKeys(ledger, 'p3')))?.row.fingerprint).to.equal(current.fingerprint);
      await ledger.handle.db.updateTable('pgp_keys').set({ not_after: new Date(Date.now() - 1000).toISOString() })
        .where('fingerprint', '=', current.fingerprint).execute();
      expect((await ackEncryptionKey(await loadPartnerKeys(ledger, 'p3')))?.row.fingerprint).to.equal(old.fingerprint);
    });
  });
});
