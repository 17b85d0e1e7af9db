/**
 * Retention and the handoff (workers/retention.ts): accepted records the account service has
 * not confirmed are never purged without an overdue event first; PGW_HANDOFF_UNCONFIRMED
 * decides what happens after (keep, or purge at a later run and expire the handoff); records
 * confirmed but not yet turned into a result are kept for the result stage. Real ledger
 * (SQLite and PostgreSQL) and real files.
 */
import { expect } from 'chai';
import { promises as fsp } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { Ledger, type Batch } from '../../../gateway/core/ledger/index.js';
import { readyHandoffInTx } from '../../../gateway/core/ledger/handoffs.js';
import { DataDir } from '../../../gateway/core/data-dir.js';
import { silentLogger } from '../../../gateway/core/logger.js';
import { newBatchId } from '../../../gateway/ingest/ingest-service.js';
import { runRetention } from '../../../workers/retention.js';
import { DATABASES } from '../../helpers/databases.js';
import { ledgerFixture } from '../../helpers/ledger-fixture.js';

const policy = { receivedDays: 30, payloadDays: 30, ackDays: 90, ledgerDays: 365, jobDays: 7 };
const later = new Date(Date.now() + 40 * 86_400_000); // past the payload period, not the others

for (const [label, make] of DATABASES) describe(`retention of handed-off records (${label})`, () => {
  let ledger: Ledger;
  let dataDir: DataDir;
  const fx = ledgerFixture(make, 'pgwret-');
  before(() => { ({ ledger, dataDir } = fx); });

  /** A finished live batch with 2 accepted records ready for the handoff, its files on disk. */
  async function handedOff(): Promise<Batch> {
    const { batch } = await ledger.batches.insertReceived({
      id: newBatchId(), partnerId: 'p1', channel: 'sftp', lane: 'live', fileName: 'a.json.pgp',
      sha256: randomBytes(32).toString('hex'), size: 10, receivedAt: new Date(), dataKey: 'v1.key',
    });
    await ledger.batches.advance(batch.id, 'decrypt', 'ack', { outcome: 'accepted', records_accepted: 2 }, { stage: 'validate', outcome: 'ok' });
    await ledger.batches.recordAck({
      batch_id: batch.id, version: 1, sha256: 's', outbox_name: 'a.json.pgp.ack.pgp', signed_by: 'g', encrypted_to: 'p', created_at: new Date().toISOString(),
    }, async (tx) => { await readyHandoffInTx(tx, batch.id, 2); });
    for (const f of [dataDir.payloadFile(batch.id), dataDir.acceptedFile(batch.id)]) await fsp.writeFile(f, 'sealed');
    return batch;
  }
  const exists = (f: string) => fsp.stat(f).then(() => true, () => false);
  const run = (unconfirmed: 'keep' | 'purge') => runRetention({ ledger, dataDir, policy, handoff: { unconfirmed }, cleanJobs: null, log: silentLogger }, { now: later });

  it('keep (the default): unconfirmed records stay past the payload period, noted overdue once', async () => {
    const b = await handedOff();
    for (let i = 0; i < 2; i++) {
      const r = await run('keep');
      expect(r.heldForHandoff).to.include(b.id);
      expect(r.payload).not.to.include(b.id);
    }
    expect(await exists(dataDir.acceptedFile(b.id))).to.equal(true);
    expect((await ledger.batches.get(b.id))!.data_key).to.equal('v1.key');
    const overdue = (await ledger.batches.events(b.id)).filter((e) => e.stage === 'handoff-overdue');
    expect(overdue.map((e) => e.code)).to.deep.equal(['handoff.overdue']);
    expect((await ledger.handoffs.get(b.id))!.state).to.equal('ready');
    const dry = await runRetention({ ledger, dataDir, policy, cleanJobs: null, log: silentLogger }, { now: later, dryRun: true });
    expect(dry.heldForHandoff, 'no policy given: keep').to.include(b.id);
  });

  it('purge: never in the run that raises the overdue event; at the next run purged, key shredded, handoff expired', async () => {
    const b = await handedOff();
    const first = await run('purge');
    expect(first.heldForHandoff).to.include(b.id);
    expect(await exists(dataDir.acceptedFile(b.id)), 'the overdue event comes first').to.equal(true);
    const steps = () => ledger.batches.events(b.id).then((e) => e.map((x) => x.stage));
    expect(await steps()).to.include('handoff-overdue');
    const second = await run('purge');
    expect(second.payload).to.include(b.id);
    expect(await exists(dataDir.acceptedFile(b.id))).to.equal(false);
    expect(await exists(dataDir.payloadFile(b.id))).to.equal(false);
    expect((await ledger.batches.get(b.id))!.data_key).to.equal(null);
    expect(await ledger.handoffs.get(b.id)).to.include({ state: 'expired' });
    const s = await steps();
    expect(s.indexOf('handoff-overdue')).to.be.lessThan(s.indexOf('handoff-expired'));
    expect((await ledger.handoffs.list({ limit: 1000 })).map((h) => h.batch_id)).not.to.include(b.id);
  });

  it('confirmed records wait for their result (the result stage deletes them), whatever the policy', async () => {
    const b = await handedOff();
    await ledger.handoffs.markTaken(b.id, 1, 'svc');
    await ledger.handoffs.confirm({ batchId: b.id, version: 1, by: 'svc', sha256: 'h', outcomes: [{ record: 0, outcome: 'created', code: null }, { record: 1, outcome: 'created', code: null }] });
    expect((await run('purge')).heldForHandoff).to.include(b.id);
    expect(await exists(dataDir.acceptedFile(b.id))).to.equal(true);
    await ledger.handoffs.release(b.id, 1);
    expect((await run('keep')).payload).to.include(b.id);
  });
});
