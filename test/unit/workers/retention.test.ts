/**
 * Retention of leftovers that never reach `done`: abandoned temp-named
 * uploads in a partner's staging area, and batches stuck before `done` (worker never ran,
 * failing at every retry, no ack possible). Past their period both go — the batch's received
 * file, quarantine and sealed files with its data key, its row anonymised like a finished
 * batch's — while anything changed within the last day stays, whatever the periods say.
 * Files and rows are backdated as the e2e retention test does; no clock is faked.
 */
import { expect } from 'chai';
import { promises as fsp } from 'node:fs';
import { Writable } from 'node:stream';
import os from 'node:os';
import path from 'node:path';
import { Ledger, nowIso } from '../../../gateway/core/ledger/index.js';
import { DataDir } from '../../../gateway/core/data-dir.js';
import { createLogger } from '../../../gateway/core/logger.js';
import { newBatchId } from '../../../gateway/ingest/ingest-service.js';
import { runRetention, type RetentionDeps } from '../../../workers/retention.js';
import { suiteDatabase, type TestDatabase } from '../../helpers/databases.js';
import { silentLogger } from '../../../gateway/core/logger.js';

const DAY = 86_400_000;
const ago = (ms: number) => new Date(Date.now() - ms);
const exists = (f: string) => fsp.stat(f).then(() => true, () => false);
const DEFAULTS = { receivedDays: 30, payloadDays: 30, ackDays: 90, ledgerDays: 365, jobDays: 7 };
const ZERO = { receivedDays: 0, payloadDays: 0, ackDays: 0, ledgerDays: 0, jobDays: 0 };

describe('retention: abandoned staged uploads and batches stuck before done', function () {
  this.timeout(30_000);
  let dir: string;
  let tdb: TestDatabase;
  let ledger: Ledger;
  let dataDir: DataDir;
  let lines: string[];
  const deps = (policy: RetentionDeps['policy']): RetentionDeps => {
    const stream = new Writable({ write(chunk: Buffer, _e, cb) { lines.push(chunk.toString('utf8')); cb(); } });
    return { ledger, dataDir, policy, cleanJobs: null, log: createLogger({ level: 'debug', stream }) };
  };

  beforeEach(async () => {
    dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'pgwret-'));
    dataDir = new DataDir(path.join(dir, 'var'));
    await dataDir.ensure();
    await dataDir.ensurePartner('kz-ret');
    tdb = await suiteDatabase(dataDir.ledgerFile);
    ledger = await Ledger.open(tdb.url, silentLogger);
    await ledger.partners.create({ id: 'kz-ret', name: 'Retention' });
    lines = [];
  });
  afterEach(async () => {
    await ledger?.close();
    await tdb?.drop();
    await fsp.rm(dir, { recursive: true, force: true });
  });

  /** A received batch `age` old, its row unchanged since, with every file a stuck batch can have. */
  async function stuckBatch(age: number, fileName = 'stuck-canary-7f3a.json.pgp'): Promise<{ id: string; files: string[] }> {
    const id = newBatchId(ago(age));
    await ledger.batches.insertReceived({
      id, partnerId: 'kz-ret', channel: 'sftp', lane: 'live', fileName, sha256: id.padEnd(64, '0').slice(0, 64),
      size: 5, receivedAt: ago(age), dataKey: 'v1.wrapped-data-key',
    });
    const files = [dataDir.spoolFile(id), dataDir.spoolSealedFile(id), dataDir.quarantineFile(id, 'r1a2'), dataDir.payloadFile(id), dataDir.acceptedFile(id)];
    for (const f of files) await fsp.writeFile(f, 'sealed bytes');
    const old = ago(age);
    for (const f of files) await fsp.utimes(f, old, old);
    return { id, files };
  }

  async function staged(lane: 'live' | 'test', name: string, age: number): Promise<string> {
    const f = path.join(dataDir.stagingDir('kz-ret', lane), name);
    await fsp.writeFile(f, 'partial upload');
    await fsp.utimes(f, ago(age), ago(age));
    return f;
  }

  it('removes temp-named uploads untouched for the received period; younger ones (and anything under a day) stay', async () => {
    const abandoned = await staged('live', 'old.json.pgp.filepart', 31 * DAY);
    const abandonedTest = await staged('test', '.old-test.json.pgp.part', 31 * DAY);
    const recent = await staged('live', 'recent.json.pgp.filepart', 29 * DAY);
    const r = await runRetention(deps(DEFAULTS));
    expect(await exists(abandoned)).to.equal(false);
    expect(await exists(abandonedTest)).to.equal(false);
    expect(await exists(recent)).to.equal(true);
    expect(r.staged).to.equal(2);
    // Period 0: still nothing that was written within the last day (an upload may be in progress).
    const writing = await staged('live', 'writing.json.pgp.filepart', 3_600_000);
    const zero = await runRetention(deps(ZERO));
    expect(zero.staged).to.equal(1);
    expect(await exists(recent)).to.equal(false);
    expect(await exists(writing)).to.equal(true);
    const all = lines.join('');
    expect(all).to.include('abandoned staged uploads removed');
    for (const name of ['old.json.pgp', 'old-test', 'recent.json']) expect(all, 'partner-chosen names stay out of logs').to.not.include(name);
  });

  it('a dry run reports staged uploads and stuck batches and changes nothing', async () => {
    const f = await staged('live', 'old.json.pgp.filepart', 31 * DAY);
    const s = await stuckBatch(40 * DAY);
    const r = await runRetention(deps(DEFAULTS), { dryRun: true });
    expect(r).to.include({ staged: 1 });
    expect(r.expired).to.deep.equal([s.id]);
    expect(await exists(f)).to.equal(true);
    for (const x of s.files) expect(await exists(x), x).to.equal(true);
    expect(await ledger.batches.get(s.id)).to.include({ stage: 'decrypt', data_key: 'v1.wrapped-data-key' });
  });

  it('expires a batch stuck before done past the period: files deleted, data key shredded, an event and a log line with ids only', async () => {
    const s = await stuckBatch(40 * DAY);
    const r = await runRetention(deps(DEFAULTS));
    for (const f of s.files) expect(await exists(f), f).to.equal(false);
    const b = (await ledger.batches.get(s.id))!;
    expect(b).to.include({ stage: 'done', outcome: 'rejected', error_code: 'batch.expired', data_key: null });
    expect(r.expired).to.deep.equal([s.id]);
    expect(r.received).to.include(s.id);
    expect(r.payload).to.include(s.id);
    expect(b.received_purged_at).to.be.a('string');
    expect(b.payload_purged_at).to.be.a('string');
    expect(b.anonymised_at, 'the row is kept named until the ledger period').to.equal(null);
    const ev = (await ledger.batches.events(s.id)).find((e) => e.stage === 'retention');
    expect(ev).to.include({ outcome: 'error', code: 'batch.expired' });
    const all = lines.join('');
    expect(all).to.include('unfinished batch expired by retention').and.to.include(s.id);
    expect(all).to.not.include('stuck-canary-7f3a');
    // Idempotent.
    const again = await runRetention(deps(DEFAULTS));
    expect([again.expired, again.received, again.payload]).to.deep.equal([[], [], []]);
  });

  it('a stuck batch past the ledger period is anonymised like a finished one; a verdict it had is kept', async () => {
    const s = await stuckBatch(400 * DAY, 'very-old-canary.json.pgp');
    // Decided (accepted) but its ack could never be made: stuck in the ack stage.
    expect(await ledger.batches.advance(s.id, 'decrypt', 'ack', { outcome: 'accepted', records_total: 3 }, { stage: 'validate', outcome: 'ok' })).to.equal(true);
    await ledger.handle.db.updateTable('batches').set({ updated_at: nowIso(ago(400 * DAY)) }).where('id', '=', s.id).execute();
    const r = await runRetention(deps(DEFAULTS));
    const b = (await ledger.batches.get(s.id))!;
    expect(b).to.include({ stage: 'done', outcome: 'accepted', error_code: 'batch.expired', records_total: 3, file_name: 'anonymised', data_key: null });
    for (const f of s.files) expect(await exists(f), f).to.equal(false);
    expect(r.expired).to.deep.equal([s.id]);
    expect(r.ledger).to.include(s.id);
    expect((await ledger.batches.events(s.id)).every((e) => e.detail === null)).to.equal(true);
  });

  it('leaves alone what may still be worked on: received recently, or changed within the period (or the last day)', async () => {
    const fresh = await stuckBatch(2 * DAY);
    const moving = await stuckBatch(40 * DAY);
    // A stage moved it an hour ago (a reconciled job after an outage): someone is working on it.
    expect(await ledger.batches.advance(moving.id, 'decrypt', 'validate', {}, { stage: 'decrypt', outcome: 'ok' })).to.equal(true);
    const r = await runRetention(deps(DEFAULTS));
    expect(r.expired).to.deep.equal([]);
    const zero = await runRetention(deps(ZERO));
    expect(zero.expired, 'period 0 reaches the batch unchanged for two days, not the one moved an hour ago').to.deep.equal([fresh.id]);
    expect(await ledger.batches.get(moving.id)).to.include({ stage: 'validate', data_key: 'v1.wrapped-data-key' });
    for (const f of moving.files) expect(await exists(f), f).to.equal(true);
  });
});
