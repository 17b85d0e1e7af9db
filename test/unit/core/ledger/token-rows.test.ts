import { expect } from 'chai';
import { Ledger } from '../../../../gateway/core/ledger/index.js';
import { silentLogger } from '../../../../gateway/core/logger.js';
import { DATABASES, type TestDatabase } from '../../../helpers/databases.js';

// Partners' API tokens and the internal API's service tokens share their row code
// (token-rows.ts); each keeps its own list and revoke (a partner token is revoked per partner).
for (const [label, make] of DATABASES) describe(`ledger token rows (${label})`, () => {
  let tdb: TestDatabase;
  let ledger: Ledger;
  before(async () => {
    tdb = await make();
    ledger = await Ledger.open(tdb.url, silentLogger);
    await ledger.partners.create({ id: 'p1', name: 'P1' });
    await ledger.partners.create({ id: 'p2', name: 'P2' });
  });
  after(async () => {
    await ledger?.close();
    await tdb?.drop();
  });

  const created = { secret_hash: 'h'.repeat(64), created_at: '2026-01-01T00:00:00.000Z', created_by: 'test' };

  it('partner tokens: stored without a last use, revoked only by their own partner, touched at most once a minute', async () => {
    await ledger.apiTokens.insert({ id: 'tok1', partner_id: 'p1', label: null, ...created });
    expect(await ledger.apiTokens.get('tok1')).to.include({ partner_id: 'p1', revoked_at: null, last_used_at: null });
    expect(await ledger.apiTokens.get('nope')).to.equal(undefined);
    expect((await ledger.apiTokens.list('p1')).map((r) => r.id)).to.deep.equal(['tok1']);
    expect(await ledger.apiTokens.list('p2')).to.deep.equal([]);

    const t0 = new Date('2026-02-01T10:00:00.000Z');
    await ledger.apiTokens.touch('tok1', t0);
    await ledger.apiTokens.touch('tok1', new Date(t0.getTime() + 30_000));
    expect((await ledger.apiTokens.get('tok1'))?.last_used_at).to.equal(t0.toISOString());
    await ledger.apiTokens.touch('tok1', new Date(t0.getTime() + 61_000));
    expect((await ledger.apiTokens.get('tok1'))?.last_used_at).to.equal(new Date(t0.getTime() + 61_000).toISOString());

    expect(await ledger.apiTokens.revoke('p2', 'tok1')).to.equal(false);
    expect(await ledger.apiTokens.revoke('p1', 'tok1')).to.equal(true);
    expect(await ledger.apiTokens.revoke('p1', 'tok1')).to.equal(false);
    expect((await ledger.apiTokens.get('tok1'))?.revoked_at).to.be.a('string');
  });

  it('service tokens: the same row life, listed across all services', async () => {
    await ledger.serviceTokens.insert({ id: 'svc2', name: 'b-service', scopes: 'handoff', client_cert_sha256: null, ...created });
    await ledger.serviceTokens.insert({ id: 'svc1', name: 'a-service', scopes: 'outbound,subjects', client_cert_sha256: 'AB', ...created });
    expect(await ledger.serviceTokens.get('svc1')).to.include({ name: 'a-service', scopes: 'outbound,subjects', client_cert_sha256: 'AB', revoked_at: null, last_used_at: null });
    expect((await ledger.serviceTokens.list()).map((r) => r.id)).to.deep.equal(['svc1', 'svc2']);

    const t0 = new Date('2026-02-01T10:00:00.000Z');
    await ledger.serviceTokens.touch('svc1', t0);
    await ledger.serviceTokens.touch('svc1', new Date(t0.getTime() + 59_000));
    expect((await ledger.serviceTokens.get('svc1'))?.last_used_at).to.equal(t0.toISOString());
    expect((await ledger.serviceTokens.get('svc2'))?.last_used_at).to.equal(null);

    expect(await ledger.serviceTokens.revoke('svc1')).to.equal(true);
    expect(await ledger.serviceTokens.revoke('svc1')).to.equal(false);
    expect((await ledger.serviceTokens.get('svc2'))?.revoked_at).to.equal(null);
  });
});
