/**
 * The handoff lifecycle in the ledger (gateway/core/ledger/handoffs.ts) and the service
 * tokens (service-tokens.ts with admin/service-tokens.ts), on SQLite and PostgreSQL.
 */
import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { Ledger, type Batch } from '../../../../gateway/core/ledger/index.js';
import { readyHandoffInTx, withdrawHandoffInTx } from '../../../../gateway/core/ledger/handoffs.js';
import { silentLogger } from '../../../../gateway/core/logger.js';
import { newBatchId } from '../../../../gateway/ingest/ingest-service.js';
import { issueServiceToken, listServiceTokens, parseScopes, revokeServiceToken, verifyServiceToken } from '../../../../gateway/admin/service-tokens.js';
import { issueToken, verifyToken } from '../../../../gateway/admin/api-tokens.js';
import { isPgwError } from '../../../../gateway/core/errors.js';
import { DATABASES, type TestDatabase } from '../../../helpers/databases.js';

for (const [label, make] of DATABASES) describe(`ledger handoffs and service tokens (${label})`, () => {
  let tdb: TestDatabase;
  let ledger: Ledger;
  before(async () => {
    tdb = await make();
    ledger = await Ledger.open(tdb.url, silentLogger);
    await ledger.audit.useKey(randomBytes(32)); // the audit chain key a process derives from its master key
    await ledger.partners.create({ id: 'p1', name: 'P1' });
    await ledger.partners.create({ id: 'p2', name: 'P2' });
  });
  after(async () => {
    await ledger?.close();
    await tdb?.drop();
  });

  /** A batch validated with `accepted` records and acked; its records made ready when `handOff`. */
  async function acked(opts: { lane?: 'live' | 'test'; accepted?: number; partner?: string; handOff?: boolean } = {}): Promise<Batch> {
    const accepted = opts.accepted ?? 3;
    const { batch } = await ledger.batches.insertReceived({
      id: newBatchId(), partnerId: opts.partner ?? 'p1', channel: 'sftp', lane: opts.lane ?? 'live', fileName: 'a.json.pgp',
      sha256: randomBytes(32).toString('hex'), size: 10, receivedAt: new Date(), dataKey: 'v1.key',
    });
    await ledger.batches.advance(batch.id, 'decrypt', 'ack', { outcome: 'accepted', records_total: accepted, records_accepted: accepted, records_rejected: 0 }, { stage: 'validate', outcome: 'ok' });
    await ledger.batches.recordAck({
      batch_id: batch.id, version: 1, sha256: 's', outbox_name: 'a.json.pgp.ack.pgp', signed_by: 'g', encrypted_to: 'p', created_at: new Date().toISOString(),
    }, opts.handOff === false ? undefined : async (tx) => { await readyHandoffInTx(tx, batch.id, accepted); });
    return (await ledger.batches.get(batch.id))!;
  }

  const steps = async (id: string) => (await ledger.batches.events(id)).map((e) => e.stage);
  const outcomes = (n: number) => Array.from({ length: n }, (_, i) => ({ record: i, outcome: i === 1 ? 'failed' as const : 'created' as const, code: i === 1 ? 'account.email_taken' : null }));

  it('finishing a batch makes its accepted records ready (v1) in the same transaction, with a timeline step', async () => {
    const b = await acked();
    const h = await ledger.handoffs.get(b.id);
    expect(h).to.include({ version: 1, state: 'ready', records: 3, taken_at: null, confirmed_at: null });
    expect(await steps(b.id)).to.include('handoff-ready');
    // a second recordAck of the same version inserts nothing, so nothing moves
    expect(await ledger.batches.recordAck({
      batch_id: b.id, version: 1, sha256: 's', outbox_name: 'x', signed_by: 'g', encrypted_to: 'p', created_at: new Date().toISOString(),
    }, async (tx) => { await readyHandoffInTx(tx, b.id, 3); })).to.equal(false);
    expect((await ledger.handoffs.get(b.id))!.version).to.equal(1);
  });

  it('lists live-lane handoffs only, oldest first, by state, with a cursor', async () => {
    const test = await acked({ lane: 'test' });
    const ids = [await acked({ partner: 'p2' }), await acked({ partner: 'p2' }), await acked({ partner: 'p2' })].map((b) => b.id);
    const all = await ledger.handoffs.list({ partnerId: 'p2', state: 'ready' });
    expect(all.map((h) => h.batch_id)).to.deep.equal(ids);
    expect((await ledger.handoffs.list({ limit: 1000 })).map((h) => h.batch_id)).not.to.include(test.id);
    const page1 = await ledger.handoffs.list({ partnerId: 'p2', limit: 2 });
    const last = page1[page1.length - 1]!;
    const page2 = await ledger.handoffs.list({ partnerId: 'p2', limit: 2, after: { readyAt: last.ready_at, batchId: last.batch_id } });
    expect([...page1, ...page2].map((h) => h.batch_id)).to.deep.equal(ids);
    expect(page2[0]).to.include({ partner_id: 'p2', file_name: 'a.json.pgp' });
  });

  it('ready → taken once (the first fetch is recorded), then confirmed once; the same outcome again is `same`, another `conflict`', async () => {
    const b = await acked();
    expect(await ledger.handoffs.confirm({ batchId: b.id, version: 1, by: 's1', sha256: 'h1', outcomes: outcomes(3) })).to.equal('not_taken');
    expect(await ledger.handoffs.markTaken(b.id, 2, 's1')).to.equal(false);
    expect(await ledger.handoffs.markTaken(b.id, 1, 's1')).to.equal(true);
    expect(await ledger.handoffs.markTaken(b.id, 1, 's2')).to.equal(true);
    expect(await ledger.handoffs.get(b.id)).to.include({ state: 'taken', taken_by: 's1' });
    expect((await steps(b.id)).filter((s) => s === 'handoff-taken')).to.have.length(1);

    expect(await ledger.handoffs.confirm({ batchId: b.id, version: 1, by: 's1', sha256: 'h1', outcomes: outcomes(3) })).to.equal('confirmed');
    expect(await ledger.handoffs.confirm({ batchId: b.id, version: 1, by: 's1', sha256: 'h1', outcomes: outcomes(3) })).to.equal('same');
    expect(await ledger.handoffs.confirm({ batchId: b.id, version: 1, by: 's1', sha256: 'h2', outcomes: outcomes(3).map((o) => ({ ...o, outcome: 'exists' as const })) })).to.equal('conflict');
    const h = (await ledger.handoffs.get(b.id))!;
    expect(h).to.include({ state: 'confirmed', outcome_sha256: 'h1', outcome_created: 2, outcome_failed: 1, outcome_exists: 0 });
    const rows = await ledger.handoffs.outcomes(b.id, 1);
    expect(rows.map((r) => [r.record, r.outcome, r.code])).to.deep.equal([[0, 'created', null], [1, 'failed', 'account.email_taken'], [2, 'created', null]]);
    expect(await ledger.handoffs.list({ state: 'confirmed' })).to.satisfy((l: { batch_id: string }[]) => l.some((x) => x.batch_id === b.id));
  });

  it('stores thousands of outcomes in one confirmation (chunked inserts)', async () => {
    const b = await acked({ accepted: 2500 });
    await ledger.handoffs.markTaken(b.id, 1, 's1');
    expect(await ledger.handoffs.confirm({ batchId: b.id, version: 1, by: 's1', sha256: 'big', outcomes: outcomes(2500) })).to.equal('confirmed');
    expect(await ledger.handoffs.outcomes(b.id, 1)).to.have.length(2500);
  });

  it('a reprocess withdraws the current version with the stage move; the next finish makes version 2, and version 1\'s outcome is refused', async () => {
    const b = await acked();
    await ledger.handoffs.markTaken(b.id, 1, 's1');
    const moved = await ledger.batches.advance(b.id, 'done', 'decrypt', {}, { stage: 'reprocess', outcome: 'info' }, (tx) => withdrawHandoffInTx(tx, b.id));
    expect(moved).to.equal(true);
    expect((await ledger.handoffs.get(b.id))!.state).to.equal('withdrawn');
    expect((await ledger.handoffs.list({ limit: 1000 })).map((h) => h.batch_id)).not.to.include(b.id);
    expect(await ledger.handoffs.confirm({ batchId: b.id, version: 1, by: 's1', sha256: 'x', outcomes: outcomes(3) })).to.equal('withdrawn');
    await ledger.batches.advance(b.id, 'decrypt', 'ack', {}, { stage: 'validate', outcome: 'ok' });
    await ledger.batches.recordAck({
      batch_id: b.id, version: 2, sha256: 's2', outbox_name: 'a', signed_by: 'g', encrypted_to: 'p', created_at: new Date().toISOString(),
    }, async (tx) => { await readyHandoffInTx(tx, b.id, 3); });
    expect(await ledger.handoffs.get(b.id)).to.include({ version: 2, state: 'ready', taken_at: null });
    expect(await ledger.handoffs.confirm({ batchId: b.id, version: 1, by: 's1', sha256: 'x', outcomes: outcomes(3) })).to.equal('superseded');
    // a stage move that loses (the batch moved meanwhile) withdraws nothing
    await ledger.handoffs.markTaken(b.id, 2, 's1');
    expect(await ledger.batches.advance(b.id, 'decrypt', 'validate', {}, { stage: 'x', outcome: 'info' }, (tx) => withdrawHandoffInTx(tx, b.id))).to.equal(false);
    expect((await ledger.handoffs.get(b.id))!.state).to.equal('taken');
  });

  it('notes an overdue handoff once per version, and counts waiting and overdue per partner', async () => {
    const b = await acked({ partner: 'p2' });
    const future = new Date(Date.now() + 3600_000);
    const noted = await ledger.handoffs.noteOverdue(future);
    expect(noted.map((n) => n.batch_id)).to.include(b.id);
    expect((await ledger.handoffs.noteOverdue(future)).map((n) => n.batch_id)).not.to.include(b.id);
    const ev = (await ledger.batches.events(b.id)).filter((e) => e.stage === 'handoff-overdue');
    expect(ev.map((e) => e.code)).to.deep.equal(['handoff.overdue']);
    expect((await ledger.handoffs.list({ state: 'overdue', overdueBefore: future, limit: 1000 })).map((h) => h.batch_id)).to.include(b.id);
    expect((await ledger.handoffs.list({ state: 'overdue', overdueBefore: new Date(0), limit: 1000 }))).to.deep.equal([]);
    const w = await ledger.handoffs.waiting(future);
    const p2 = w.byPartner.filter((x) => x.partner_id === 'p2').reduce((n, x) => n + x.waiting, 0);
    expect(p2).to.be.at.least(4);
    expect(w.overdue).to.equal(w.waiting);
    expect((await ledger.handoffs.waiting(new Date(0))).overdue).to.equal(0);
  });

  it('records a result once, counts downloads, and releases the records only when the batch is done (shredding its data key)', async () => {
    const b = await acked();
    await ledger.handoffs.markTaken(b.id, 1, 's1');
    await ledger.handoffs.confirm({ batchId: b.id, version: 1, by: 's1', sha256: 'h', outcomes: outcomes(3) });
    expect((await ledger.handoffs.unreleased()).map((u) => u.batch_id)).to.include(b.id);
    const row = { batch_id: b.id, version: 1, sha256: 'r1', outbox_name: 'a.json.pgp.result.pgp', signed_by: 'g', encrypted_to: 'p', created_at: new Date().toISOString() };
    expect(await ledger.handoffs.recordResult(row)).to.equal(true);
    expect(await ledger.handoffs.recordResult(row)).to.equal(false);
    expect((await ledger.handoffs.resultsByOutboxName('p1', ['a.json.pgp.result.pgp'])).map((r) => r.batch_id)).to.include(b.id);
    expect(await ledger.handoffs.resultsByOutboxName('p2', ['a.json.pgp.result.pgp'])).to.deep.equal([]);
    await ledger.handoffs.markResultDownloaded(b.id, 1, 'sftp');
    await ledger.handoffs.markResultDownloaded(b.id, 1, 'https');
    expect(await ledger.handoffs.getResult(b.id)).to.include({ download_count: 2 });
    expect((await steps(b.id)).filter((s) => s === 'result-downloaded')).to.have.length(1);

    await ledger.batches.advance(b.id, 'done', 'validate', {}, { stage: 'reprocess', outcome: 'info' });
    expect(await ledger.handoffs.release(b.id, 1), 'not while the batch runs again').to.equal(false);
    await ledger.batches.advance(b.id, 'validate', 'done', {}, { stage: 'x', outcome: 'info' });
    expect(await ledger.handoffs.release(b.id, 2)).to.equal(false);
    expect(await ledger.handoffs.release(b.id, 1)).to.equal(true);
    expect(await ledger.handoffs.release(b.id, 1)).to.equal(false);
    expect((await ledger.batches.get(b.id))!.data_key).to.equal(null);
    expect((await ledger.handoffs.get(b.id))!.released_at).to.be.a('string');
    expect((await ledger.handoffs.unreleased()).map((u) => u.batch_id)).not.to.include(b.id);
  });

  it('result pushes are kept apart from ack pushes, and listed as undelivered while the partner has a webhook', async () => {
    const b = await acked({ partner: 'p2' });
    await ledger.handoffs.markTaken(b.id, 1, 's1');
    await ledger.handoffs.confirm({ batchId: b.id, version: 1, by: 's1', sha256: 'h', outcomes: outcomes(3) });
    await ledger.handoffs.recordResult({ batch_id: b.id, version: 1, sha256: 'r', outbox_name: 'x.result.pgp', signed_by: 'g', encrypted_to: 'p', created_at: new Date().toISOString() });
    expect((await ledger.handoffs.undeliveredResults()).map((r) => r.batch_id)).not.to.include(b.id);
    await ledger.partners.update('p2', { webhookUrl: 'https://hooks.example/p2' });
    expect((await ledger.handoffs.undeliveredResults()).map((r) => r.batch_id)).to.include(b.id);
    await ledger.resultPushes.recordAttempt(b.id, 1, 'hooks.example', { status: 500, code: 'webhook.http_status', delivered: false });
    await ledger.resultPushes.recordAttempt(b.id, 1, 'hooks.example', { status: 204, code: null, delivered: true });
    expect(await ledger.resultPushes.get(b.id, 1)).to.include({ attempts: 2, last_status: 204 });
    expect(await ledger.ackPushes.get(b.id, 1)).to.equal(undefined);
    expect((await steps(b.id)).filter((s) => s === 'result-pushed')).to.have.length(2);
    expect((await ledger.handoffs.undeliveredResults()).map((r) => r.batch_id)).not.to.include(b.id);
    await ledger.partners.update('p2', { webhookUrl: null });
  });

  it('service tokens: shown once, only a hash kept, verified in constant time, scoped, revoked, audited; never a partner token', async () => {
    const issued = await issueServiceToken(ledger, { name: 'account-service', scopes: ['handoff'] }, 'cli:test');
    expect(issued.token).to.match(/^pgws_[a-z2-9]{12}_[A-Za-z0-9_-]{43}$/);
    const secret = issued.token.split('_')[2]!;
    const stored = await ledger.handle.db.selectFrom('service_tokens').selectAll().where('id', '=', issued.id).executeTakeFirstOrThrow();
    expect(JSON.stringify(stored)).not.to.include(secret);
    const who = await verifyServiceToken(ledger, issued.token);
    expect(who).to.include({ id: issued.id, name: 'account-service' });
    expect([...who!.scopes]).to.deep.equal(['handoff']);
    expect(await verifyServiceToken(ledger, `${issued.token.slice(0, -1)}${issued.token.endsWith('A') ? 'B' : 'A'}`)).to.equal(null);
    // the two kinds of token never stand in for each other
    const partnerToken = await issueToken(ledger, 'p1', 'cli:test');
    expect(await verifyServiceToken(ledger, partnerToken.token)).to.equal(null);
    expect(await verifyToken(ledger, issued.token)).to.equal(null);
    expect((await listServiceTokens(ledger)).find((t) => t.id === issued.id)).to.not.have.property('secret_hash');
    await revokeServiceToken(ledger, issued.id, 'cli:test');
    expect(await verifyServiceToken(ledger, issued.token)).to.equal(null);
    try {
      await revokeServiceToken(ledger, issued.id, 'cli:test');
      expect.fail('a second revoke must fail');
    } catch (err) {
      expect(isPgwError(err, 'service.token_not_found')).to.equal(true);
    }
    const audit = (await ledger.audit.list({ limit: 20 })).map((e) => e.action);
    expect(audit).to.include.members(['service_token.issued', 'service_token.revoked']);
    expect(parseScopes('subjects, handoff,handoff')).to.deep.equal(['handoff', 'subjects']);
    for (const bad of ['', 'admin', 'handoff,root']) expect(() => parseScopes(bad), bad).to.throw(/service names|scopes/);
    try {
      await issueServiceToken(ledger, { name: 'Bad Name', scopes: ['handoff'] }, 'cli:test');
      expect.fail('a bad name must fail');
    } catch (err) {
      expect(isPgwError(err, 'service.invalid')).to.equal(true);
    }
  });
});
