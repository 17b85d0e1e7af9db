/**
 * Retention with shortened periods, through `pgw retention run` as an operator runs it:
 * a dry run changes nothing; the real run removes received files, payloads (their data keys
 * shredded, so a surviving copy cannot be opened), acks and outbox entries, and anonymises
 * the ledger rows while counts, codes, hashes and times stay. A batch still in the pipeline is untouched.
 */
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { GatewayHarness, type TestPartner } from '../../helpers/gateway-harness.js';
import { sampleBatch } from '../../../schemas/testing/sample-records.js';
import { newBatchId } from '../../../gateway/ingest/ingest-service.js';
import { Queue, type ConnectionOptions } from 'bullmq';
import { createRedis } from '../../../workers/queues.js';
import { queueKeyPrefix } from '../../../gateway/core/redis/key-names.js';
import { RETENTION_QUEUE } from '../../../workers/retention-scheduler.js';
import { silentLogger } from '../../../gateway/core/logger.js';

const run = promisify(execFile);
const PGW = path.resolve(import.meta.dirname, '../../../bin/pgw.js');
const exists = (f: string) => fsp.stat(f).then(() => true, () => false);

describe('retention (pgw retention run)', function () {
  this.timeout(120_000);
  let h: GatewayHarness;
  let alpha: TestPartner;
  const ids: string[] = [];
  let unfinished = '';
  const bsns: string[] = [];

  const pgw = async (args: string[], env: Record<string, string> = {}) => run(process.execPath, [PGW, ...args], { env: { ...h.env, ...env } });
  // The batches' accepted records were never confirmed by the account service: retention
  // purges them only with PGW_HANDOFF_UNCONFIRMED=purge and once noted overdue (see before();
  // the default, keep, is test/unit/workers/retention-handoff.test.ts).
  const ZERO = {
    PGW_RETENTION_RECEIVED_DAYS: '0', PGW_RETENTION_PAYLOAD_DAYS: '0', PGW_RETENTION_ACK_DAYS: '0', PGW_RETENTION_LEDGER_DAYS: '0', PGW_RETENTION_JOB_DAYS: '0',
    PGW_HANDOFF_UNCONFIRMED: 'purge',
  };

  before(async () => {
    h = await GatewayHarness.create();
    await h.start('all');
    alpha = await h.addPartner('kz-alpha');
    for (const name of ['keep-1.json.pgp', 'keep-2.json.pgp']) {
      const batch = sampleBatch(3, new Date());
      batch.reference = `ref-${name}`;
      bsns.push(...batch.records.map((r) => r.bsn!));
      const file = await h.seal(alpha, JSON.stringify(batch), name);
      const r = await h.sftp(alpha, [`put ${file} /inbox/${name}`]);
      expect(r.code, r.stderr).to.equal(0);
      await h.waitForAck('kz-alpha', `${name}.ack.pgp`);
    }
    ids.push(...(await h.withLedger((l) => l.batches.list({ partnerId: 'kz-alpha' }))).map((b) => b.id));
    // The worker declared the daily run (a job scheduler in Redis), so it happens without traffic.
    const redis = createRedis(h.config, false, silentLogger);
    const q = new Queue(RETENTION_QUEUE, { connection: redis as ConnectionOptions, prefix: queueKeyPrefix(h.config.queuePrefix) });
    try {
      const schedulers = await q.getJobSchedulers();
      expect(schedulers.map((x) => [x.key ?? x.id, x.every])).to.deep.include(['retention-daily', 86_400_000]);
    } finally {
      await q.close();
      redis.disconnect();
    }
    await h.stopAll();
    await h.withLedger((l) => l.handoffs.noteOverdue(new Date(Date.now() + 3_600_000)));
    // A batch still in the pipeline (received an hour ago, its worker is gone for now):
    // retention must leave it alone even with periods of 0. (One stuck for longer is
    // expired: test/unit/workers/retention.test.ts.)
    unfinished = newBatchId(new Date(Date.now() - 3_600_000));
    await h.withLedger((l) => l.batches.insertReceived({
      id: unfinished, partnerId: 'kz-alpha', channel: 'sftp', lane: 'live', fileName: 'in-flight.json.pgp', sha256: 'f'.repeat(64),
      size: 1, receivedAt: new Date(Date.now() - 3_600_000), dataKey: 'v1.unused',
    }));
    await fsp.writeFile(h.dataDir.spoolFile(unfinished), 'still needed');
  });

  after(async () => {
    await h?.cleanup();
  });

  it('a dry run lists what is due and changes nothing; default periods keep fresh data', async () => {
    const kept = JSON.parse((await pgw(['retention', 'run', '--dry-run', '--json'])).stdout);
    expect([kept.expired, kept.received, kept.payload, kept.acks, kept.ledger]).to.deep.equal([[], [], [], [], []]);
    const dry = JSON.parse((await pgw(['retention', 'run', '--dry-run', '--json'], ZERO)).stdout);
    expect(dry.dryRun).to.equal(true);
    expect(dry.payload).to.have.members(ids).and.not.include(unfinished);
    for (const id of ids) expect(await exists(h.dataDir.payloadFile(id)), id).to.equal(true);
  });

  it('removes blobs, shreds data keys and anonymises rows; unfinished batches stay', async () => {
    const before = await h.withLedger(async (l) => Promise.all(ids.map((id) => l.batches.get(id))));
    expect(await h.withLedger((l) => l.subjects.indexedBatches()), 'the batches\' records are indexed before').to.include.members(ids);
    const copy = path.join(h.dir, 'payload-copy.sealed');
    await fsp.copyFile(h.dataDir.payloadFile(ids[0]!), copy);
    const out = await pgw(['retention', 'run', '--json'], ZERO);
    const r = JSON.parse(out.stdout);
    expect(r.ledger).to.have.members(ids);
    for (const id of ids) {
      for (const f of [h.dataDir.spoolFile(id), h.dataDir.payloadFile(id), h.dataDir.acceptedFile(id), h.dataDir.ackBlob(id, 1)]) {
        expect(await exists(f), f).to.equal(false);
      }
    }
    expect(await fsp.readdir(h.dataDir.outboxFor('kz-alpha', 'live')).then((n) => n.filter((x) => x.endsWith('.ack.pgp')))).to.deep.equal([]);
    const after = await h.withLedger(async (l) => Promise.all(ids.map((id) => l.batches.get(id))));
    const indexed = await h.withLedger((l) => l.subjects.indexedBatches());
    for (const id of ids) expect(indexed, `${id}: no index entries outlive the purged records`).to.not.include(id);
    for (const [i, b] of after.entries()) {
      const was = before[i]!;
      expect(b).to.include({
        data_key: null, file_name: 'anonymised', reference: null, record_issues: null,
        sha256: was!.sha256, outcome: was!.outcome, records_total: was!.records_total, received_at: was!.received_at, acked_at: was!.acked_at,
      });
      expect(b!.anonymised_at).to.be.a('string');
      const events = await h.withLedger((l) => l.batches.events(b!.id));
      expect(events.every((e) => e.detail === null)).to.equal(true);
    }
    // Crypto-shredding: the surviving copy is ciphertext and its key no longer exists anywhere.
    const bytes = await fsp.readFile(copy);
    for (const bsn of bsns) expect(bytes.includes(Buffer.from(bsn))).to.equal(false);
    // Unfinished: untouched.
    const u = await h.withLedger((l) => l.batches.get(unfinished));
    expect(u).to.include({ file_name: 'in-flight.json.pgp', data_key: 'v1.unused', anonymised_at: null });
    expect(await exists(h.dataDir.spoolFile(unfinished))).to.equal(true);
    const audit = await h.withLedger((l) => l.audit.list(10));
    expect(audit.some((e) => e.action === 'retention.run')).to.equal(true);
    // Idempotent: a second run finds nothing more to do.
    const again = JSON.parse((await pgw(['retention', 'run', '--json'], ZERO)).stdout);
    expect([again.expired, again.received, again.payload, again.acks, again.ledger]).to.deep.equal([[], [], [], [], []]);
  });
});
