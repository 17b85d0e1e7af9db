/**
 * keys/gateway-rotation, key-expiry and key-notices: a rotation's schedule, judged at
 * chosen times (no sleeping), and the warnings and ack notices derived from key rows.
 */
import { expect } from 'chai';
import { createGatewayKey, GatewayKeyring, publishedGatewayKeys } from '../../../keys/gateway-keyring.js';
import { retireGatewayKey, rotateGatewayKey } from '../../../keys/gateway-rotation.js';
import { expiryWarnings } from '../../../keys/key-expiry.js';
import { keyNotices } from '../../../keys/key-notices.js';
import type { Ledger, PgpKeyRow } from '../../../gateway/core/ledger/index.js';
import { KEY_PASSPHRASE, DAY } from '../../helpers/pgp-fixtures.js';
import { tempLedger } from '../../helpers/key-unit.js';
import { codeOf } from '../../helpers/expect-code.js';


describe('keys/gateway-rotation', function () {
  this.timeout(60_000);
  let close: () => Promise<void>;
  let ledger: Ledger;
  beforeEach(async () => {
    ({ ledger, close } = await tempLedger('pgw-rot-'));
  });
  afterEach(async () => {
    await close?.();
  });

  it('next at once (published, decrypting), signs at activation, old key decrypt-only through the overlap, then retired', async () => {
    const now = new Date();
    const old = await createGatewayKey(ledger, KEY_PASSPHRASE, { now: new Date(now.getTime() - 30 * DAY) });
    const r = await rotateGatewayKey(ledger, KEY_PASSPHRASE, { activateAt: new Date(now.getTime() + DAY), overlapDays: 2, leadDays: 7, actor: 'test', now });
    expect(r.retiring).to.deep.equal([{ fingerprint: old.fingerprint, retireAt: new Date(now.getTime() + 3 * DAY).toISOString() }]);
    const ring = await GatewayKeyring.load(ledger, KEY_PASSPHRASE);
    const at = (days: number) => new Date(now.getTime() + days * DAY);
    const fps = (ks: { row: PgpKeyRow }[]) => ks.map((k) => k.row.fingerprint).sort();

    expect(ring.signingKey(at(0)).row.fingerprint).to.equal(old.fingerprint);
    expect(fps(ring.decryptionKeys(at(0)))).to.deep.equal([old.fingerprint, r.next.fingerprint].sort());
    expect(publishedGatewayKeys(ring.all().map((k) => k.row), at(0))).to.include(r.next.public_armored.trim()).and.include(old.public_armored.trim());

    expect(ring.signingKey(at(1.5)).row.fingerprint).to.equal(r.next.fingerprint);
    expect(ring.state(ring.all().find((k) => k.row.fingerprint === old.fingerprint)!, at(1.5))).to.equal('decrypt-only');
    expect(fps(ring.decryptionKeys(at(2.9)))).to.deep.equal([old.fingerprint, r.next.fingerprint].sort());

    expect(fps(ring.decryptionKeys(at(3.1)))).to.deep.equal([r.next.fingerprint]);
    expect(ring.state(ring.all().find((k) => k.row.fingerprint === old.fingerprint)!, at(3.1))).to.equal('retired');
    expect((await ledger.pgpKeys.get(old.fingerprint))).to.not.equal(undefined); // never deleted

    const [ev] = await ledger.audit.list({ action: 'gateway_key.rotated' });
    expect(ev).to.include({ actor: 'test', target: r.next.fingerprint });
  });

  it('refuses a second rotation while a key is waiting, an activation in the past and a zero overlap', async () => {
    await createGatewayKey(ledger, KEY_PASSPHRASE);
    const base = { overlapDays: 1, leadDays: 7, actor: 'test' };
    expect(await codeOf(rotateGatewayKey(ledger, KEY_PASSPHRASE, { ...base, activateAt: new Date(Date.now() - DAY) }))).to.equal('key.rotation_invalid');
    expect(await codeOf(rotateGatewayKey(ledger, KEY_PASSPHRASE, { ...base, overlapDays: 0 }))).to.equal('key.rotation_invalid');
    const first = await rotateGatewayKey(ledger, KEY_PASSPHRASE, base);
    expect(new Date(first.activateAt).getTime()).to.be.closeTo(Date.now() + 7 * DAY, 60_000);
    expect(await codeOf(rotateGatewayKey(ledger, KEY_PASSPHRASE, base))).to.equal('key.rotation_invalid');
  });

  it('retire: refused while no other key would sign; ends the overlap early once the next key is active; audited', async () => {
    const now = new Date();
    const old = await createGatewayKey(ledger, KEY_PASSPHRASE, { now: new Date(now.getTime() - 30 * DAY) });
    expect(await codeOf(retireGatewayKey(ledger, { fingerprint: old.fingerprint, actor: 'test', now }))).to.equal('key.rotation_invalid');
    const r = await rotateGatewayKey(ledger, KEY_PASSPHRASE, { activateAt: new Date(now.getTime() + DAY), overlapDays: 30, leadDays: 7, actor: 'test', now });
    // Before the next key activates, retiring the signer now would leave no signer.
    expect(await codeOf(retireGatewayKey(ledger, { fingerprint: old.fingerprint, actor: 'test', now }))).to.equal('key.rotation_invalid');
    expect(await codeOf(retireGatewayKey(ledger, { fingerprint: 'abcd', actor: 'test', now }))).to.equal('key.not_found');
    const at = new Date(now.getTime() + 2 * DAY);
    expect(await retireGatewayKey(ledger, { fingerprint: `0x${old.fingerprint.slice(-16).toUpperCase()}`, at, actor: 'test', now }))
      .to.deep.equal({ fingerprint: old.fingerprint, retireAt: at.toISOString() });
    const ring = await GatewayKeyring.load(ledger, KEY_PASSPHRASE);
    expect(ring.decryptionKeys(new Date(now.getTime() + 2.5 * DAY)).map((k) => k.row.fingerprint)).to.deep.equal([r.next.fingerprint]);
    expect((await ledger.audit.list({ action: 'gateway_key.retired' })).map((e) => e.target)).to.deep.equal([old.fingerprint]);
  });
});

describe('keys/key-expiry and key-notices', () => {
  const NOW = new Date('2026-06-01T00:00:00.000Z');
  const iso = (days: number) => new Date(NOW.getTime() + days * DAY).toISOString();
  const row = (fp: string, r: Partial<PgpKeyRow>): PgpKeyRow => ({
    fingerprint: fp.padStart(40, '0'), owner: 'partner', partner_id: 'p1', key_fingerprints: '[]', algorithm: 'x', public_armored: '',
    private_armored: null, key_created_at: iso(-100), not_before: iso(-100), not_after: null, revoked_at: null, revocation_reason: null, signed_by: null,
    created_at: iso(-100), ...r,
  });

  it('warns at the 30/14/7-day thresholds, and not for revoked, expired or far-off keys', () => {
    const rows = [
      row('a1', { not_after: iso(40) }), row('a2', { not_after: iso(20) }), row('a3', { not_after: iso(10) }),
      row('a4', { not_after: iso(3) }), row('a5', { not_after: iso(3), revoked_at: iso(-1) }), row('a6', { not_after: iso(-1) }),
      row('a7', {}),
    ];
    const w = expiryWarnings(rows, NOW);
    expect(w.map((x) => [x.fingerprint.slice(-2), x.threshold, x.daysLeft])).to.deep.equal([['a4', 7, 3], ['a3', 14, 10], ['a2', 30, 20]]);
  });

  it('ack notices: expiring and pending partner keys, the next gateway key, a retiring gateway key used for this batch', () => {
    const partner = [
      row('b1', { not_after: iso(10) }), row('b2', { not_before: iso(1), created_at: iso(0) }),
      row('b3', { revoked_at: iso(-3) }), row('b4', { revoked_at: iso(-40) }),
    ];
    const gw = [
      row('c1', { owner: 'gateway', partner_id: null, not_before: iso(-50), not_after: iso(5) }),
      row('c2', { owner: 'gateway', partner_id: null, not_before: iso(-1) }),
      row('c3', { owner: 'gateway', partner_id: null, not_before: iso(20) }),
    ];
    const notices = keyNotices({ decrypt_key_fingerprint: gw[0]!.fingerprint }, partner, gw, NOW);
    expect(notices.map((n) => [n.code, n.fingerprint.slice(-2)])).to.deep.equal([
      ['key.expiring', 'b1'], ['key.pending', 'b2'], ['key.revoked_recently', 'b3'], ['gateway_key.next', 'c3'], ['gateway_key.retiring', 'c1'],
    ]);
    expect(notices[0]!.message).to.match(/^your signing key 0x[0-9A-F]{16} expires on 2026-06-11/);
    expect(notices[2]!.message).to.include('revoked on 2026-05-29');
    expect(notices[4]!.message).to.include('retired on 2026-06-06').and.include('/keys/gateway.asc');
    expect(keyNotices({ decrypt_key_fingerprint: gw[1]!.fingerprint }, [], gw, NOW).map((n) => n.code)).to.deep.equal(['gateway_key.next']);
  });
});
