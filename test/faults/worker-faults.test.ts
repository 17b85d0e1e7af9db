/**
 * Worker-side faults (test/security/CHECKLIST.md "Queue & crash faults"):
 * - permanent failures fail fast — first attempt, no retry — with a signed reject ack;
 * - transient failures (a real I/O error: the spool file is briefly not there, as when a
 *   shared data volume flaps) are retried with backoff and then succeed;
 * - a worker frozen mid-job past its lock (what a stage that holds the event loop does): the
 *   job BullMQ hands out again must not run beside the first run.
 * No mocks: real `pgw` processes, real Redis (private), real files.
 */
import { expect } from 'chai';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { queueKeyPrefix } from '../../gateway/core/redis/key-names.js';
import { sampleBatch } from '../../schemas/testing/sample-records.js';
import { DataKeys, deriveMasterKey, loadOrCreateSalt, readSealedAll } from '../../gateway/core/sealed-blob.js';
import {
  FaultRig, allBatches, assertExactlyOneAckPerBatch, logs, waitAllDone, type PgwProcess, type TestPartner,
} from '../helpers/fault-tools.js';
import { waitFor } from '../helpers/wait-for.js';

describe('faults: transient vs permanent failures, stalled jobs', function () {
  this.timeout(120_000);
  let rig: FaultRig;
  let worker: PgwProcess;

  before(async () => {
    rig = await FaultRig.create();
    [, worker] = await Promise.all([rig.h.start('gateway'), rig.h.start('worker')]);
  });

  after(async () => {
    if (worker) worker.child.kill('SIGCONT');
    await rig?.cleanup();
  });

  /** 'stage failed' log lines of the worker for one batch. */
  const failures = (batchId: string) => logs(worker, 'stage failed').filter((l) => l.batch === batchId);

  async function put(p: TestPartner, file: string, name: string): Promise<void> {
    const r = await rig.sftp(p, [`put ${file} /inbox/${name}`]);
    expect(r.code, r.stderr).to.equal(0);
  }

  it('permanent failures (garbage bytes; valid PGP around truncated JSON) get a signed reject ack on the first attempt', async () => {
    const p = await rig.partner('kz-permanent');
    const garbage = path.join(p.gpgHome, 'garbage.json.pgp');
    // Bit 7 of the first byte clear: never an OpenPGP packet header (pure random bytes
    // occasionally frame as a packet and fail later as pgp.integrity instead).
    const bytes = randomBytes(4096);
    bytes[0] = bytes[0]! & 0x7f;
    await fsp.writeFile(garbage, bytes);
    const notJson = await rig.seal(p, '{"schema":"client-registration/v1","records":[{"bsn":', 'not-json.json.pgp'); // truncated JSON
    await put(p, garbage, 'garbage.json.pgp');
    await put(p, notJson, 'not-json.json.pgp');

    const batches = await waitAllDone(rig.h, 2, 30_000, [p.id]);
    const acked = await assertExactlyOneAckPerBatch(rig.h, { partners: [p], count: 2 });
    const expected: Record<string, { code: string; stage: string }> = {
      'garbage.json.pgp': { code: 'pgp.malformed', stage: 'decrypt' },
      'not-json.json.pgp': { code: 'payload.malformed', stage: 'validate' },
    };
    for (const b of batches) {
      const want = expected[b.file_name]!;
      const a = acked.get(b.id)!;
      expect(a.batch.outcome, b.file_name).to.equal('rejected');
      expect(a.batch.error_code, b.file_name).to.equal(want.code);
      expect((a.ack!.reason as { code: string }).code, 'the ack says why').to.equal(want.code);
      expect(a.signer, 'the reject ack is signed by the gateway').to.equal(rig.h.gatewayFingerprint);
      // First attempt: no failed attempt was ever logged, one verdict event, no backoff delay.
      expect(failures(b.id), `${b.file_name}: failed attempts`).to.deep.equal([]);
      const events = await rig.h.withLedger((l) => l.batches.events(b.id));
      expect(events.filter((e) => e.stage === want.stage && e.outcome === 'error').map((e) => e.code)).to.deep.equal([want.code]);
      const ms = new Date(a.batch.processed_at!).getTime() - new Date(a.batch.received_at).getTime();
      expect(ms, `${b.file_name}: decided within the first attempt's time`).to.be.below(5_000);
    }
  });

  it('a transient failure (spool file briefly missing: ENOENT) is retried with backoff and then accepted', async () => {
    const p = await rig.partner('kz-transient');
    const file = await rig.seal(p, JSON.stringify(sampleBatch(4, new Date())), 'flaky.json.pgp');
    const hold = path.join(rig.h.dir, 'held-spool.pgp');
    worker.child.kill('SIGSTOP'); // the job waits until the fault is in place
    let id: string;
    try {
      await put(p, file, 'flaky.json.pgp');
      id = (await rig.h.withLedger((l) => allBatches(l, [p.id])))[0]!.id;
      await fsp.rename(rig.h.dataDir.spoolFile(id), hold);
    } finally {
      worker.child.kill('SIGCONT');
    }
    // Two failed attempts, the second after a backoff delay; then the file comes back.
    await waitFor(() => failures(id).length >= 2, 30_000, 'two failed decrypt attempts');
    await fsp.rename(hold, rig.h.dataDir.spoolFile(id));
    const [f1, f2] = failures(id);
    expect([f1!.attempt, f2!.attempt, f1!.final, f2!.final]).to.deep.equal([1, 2, false, false]);
    expect((f1!.err as { code?: string }).code, 'a real I/O error').to.equal('ENOENT');
    const gap = new Date(String(f2!.timestamp)).getTime() - new Date(String(f1!.timestamp)).getTime();
    expect(gap, 'backoff between attempts (1 s base, jitter 0.5)').to.be.at.least(400);

    await waitAllDone(rig.h, 1, 30_000, [p.id]);
    const a = (await assertExactlyOneAckPerBatch(rig.h, { partners: [p], count: 1 })).get(id)!;
    expect(a.batch.outcome, 'retried to success, not rejected').to.equal('accepted');
    const events = await rig.h.withLedger((l) => l.batches.events(id));
    expect(events.filter((e) => e.stage === 'decrypt').map((e) => e.outcome)).to.deep.equal(['ok']);
  });

  it('a worker frozen mid-decrypt past its job lock: the redelivered job does not run beside the first; one accepted ack', async function () {
    const p = await rig.partner('kz-stalled');
    // ~15 MB of JSON: its decrypt takes a few hundred ms, far longer than a redelivery.
    const file = await rig.seal(p, JSON.stringify(sampleBatch(60_000, new Date())), 'stall.json.pgp');
    const prefix = queueKeyPrefix(rig.h.config.queuePrefix);
    const redis = new Redis(rig.redis.url, { maxRetriesPerRequest: 1 });
    const q = (k: string) => `${prefix}:decrypt:${k}`;
    try {
      worker.child.kill('SIGSTOP');
      let id: string;
      try {
        await put(p, file, 'stall.json.pgp');
        id = (await rig.h.withLedger((l) => allBatches(l, [p.id])))[0]!.id;
      } finally {
        worker.child.kill('SIGCONT');
      }
      const jobId = `${id}-decrypt`;
      const stalledEvents = async () => (await redis.xrange(q('events'), '-', '+')).filter(([, f]) => f.includes('stalled') && f.includes(jobId));
      // BullMQ's stalled check is two-phase: one pass marks the active jobs, the next pass (at
      // least stalledInterval later) moves those whose lock is gone. The worker is frozen
      // around both, so that the redelivery lands while run 1 has almost all its work ahead.
      // 1. Run 1 has begun (its lock exists): freeze; frozen, it cannot renew the lock.
      await waitFor(async () => (await redis.exists(q(`${jobId}:lock`))) === 1, 30_000, 'the decrypt job to become active');
      worker.child.kill('SIGSTOP');
      try {
        await waitFor(async () => (await redis.exists(q(`${jobId}:lock`))) === 0, 30_000, 'the job lock to expire');
      } finally {
        worker.child.kill('SIGCONT');
      }
      // 2. Let a pass mark the job (or move it, when an earlier pass had marked it already).
      await waitFor(async () => (await redis.sismember(q('stalled'), jobId)) === 1 || (await stalledEvents()).length > 0, 30_000, 'a stalled-check pass');
      if ((await stalledEvents()).length === 0) {
        // 3. Freeze again until the next pass is due; on resume it moves the job at once.
        worker.child.kill('SIGSTOP');
        try {
          await waitFor(async () => (await redis.exists(q('stalled-check'))) === 0, 30_000, 'the next stalled-check pass to be due');
        } finally {
          worker.child.kill('SIGCONT');
        }
      }
      await waitAllDone(rig.h, 1, 60_000, [p.id]);

      // The fault did happen (independent of how the worker handles it): the job was declared
      // stalled and became active again before run 1 reached its verdict.
      const events = await redis.xrange(q('events'), '-', '+');
      const mine = events.filter(([, f]) => f.includes(jobId));
      expect(mine.filter(([, f]) => f.includes('stalled')).length, 'declared stalled').to.be.at.least(1);
      const actives = mine.filter(([, f]) => f[1] === 'active').map(([eid]) => Number(eid.split('-')[0]));
      expect(actives.length, 'redelivered').to.be.at.least(2);
      const verdicts = logs(worker, 'batch verified and decrypted').filter((l) => l.batch === id);
      expect(verdicts.length, 'decrypt runs that finished').to.be.at.least(1);
      if (!(actives[1]! < new Date(String(verdicts[0]!.timestamp)).getTime())) {
        console.log('      (skipped: the redelivery came after run 1 finished; the overlap was not produced)');
        // Nothing about overlapping runs can be concluded, so say so instead of passing or failing on it.
        // Reason: the race this test sets up did not happen this time (run 1 finished before the redelivery).
        this.skip();
      }
      // Two runs at once would both decrypt into the one quarantine file: the loser logs a
      // second verdict, or fails to promote (ENOENT) — a spurious failed attempt — and the
      // winner's payload may be rewritten under the validate stage reading it.
      expect(verdicts, 'decrypt runs that finished').to.have.length(1);
      expect(failures(id), 'no failed attempt').to.deep.equal([]);
      const a = (await assertExactlyOneAckPerBatch(rig.h, { partners: [p], count: 1 })).get(id)!;
      expect(a.batch.outcome, 'a valid batch stays accepted').to.equal('accepted');
      expect(a.batch.records_accepted).to.equal(60_000);
    } finally {
      redis.disconnect();
    }
  });

  // A run whose lock lapsed on one worker (frozen, or a long GC/CPU stall) resumes after
  // another worker has finished the batch: it must not write into the promoted payload (each
  // run has its own quarantine file, and promotes only while the ledger still says decrypt).
  it('a lapsed decrypt run resuming after another worker finished the batch leaves its payload intact', async () => {
    const p = await rig.partner('kz-lapsed');
    const file = await rig.seal(p, JSON.stringify(sampleBatch(60_000, new Date())), 'lapsed.json.pgp');
    const redis = new Redis(rig.redis.url, { maxRetriesPerRequest: 1 });
    try {
      await put(p, file, 'lapsed.json.pgp');
      const id = (await rig.h.withLedger((l) => allBatches(l, [p.id])))[0]!.id;
      const quarantineSize = async () => {
        const n = (await fsp.readdir(rig.h.dataDir.quarantineDir)).find((x) => x.startsWith(`${id}.`));
        return n ? (await fsp.stat(`${rig.h.dataDir.quarantineDir}/${n}`).catch(() => null))?.size ?? 0 : 0;
      };
      await waitFor(async () => (await quarantineSize()) > 0, 30_000, 'run 1 writing its quarantine');
      worker.child.kill('SIGSTOP');
      await waitFor(async () => (await redis.exists(`${queueKeyPrefix(rig.h.config.queuePrefix)}:decrypt:${id}-decrypt:lock`)) === 0, 30_000, 'the job lock to expire');
      const other = await rig.h.start('worker'); // takes the stalled job over and finishes the batch
      await waitAllDone(rig.h, 1, 60_000, [p.id]);
      const mark = worker.lines.length;
      worker.child.kill('SIGCONT');
      // Run 1 has ended once BullMQ refused to finish it (its lock is gone) or it logged an outcome.
      await waitFor(() => logs({ ...worker, lines: worker.lines.slice(mark) }).some((l) =>
        (l.batch === id && (l.message === 'stage failed' || l.message === 'batch verified and decrypted'))
        || String((l.err as { at?: string } | undefined)?.at ?? '').includes('finished-errors')), 30_000, 'the lapsed run to end');
      other.child.kill('SIGKILL');
      const keys = new DataKeys(deriveMasterKey(rig.h.env.PGW_KEY_PASSPHRASE!, await loadOrCreateSalt(rig.h.dataDir.keysDir)));
      const batch = await rig.h.withLedger((l) => l.batches.get(id));
      const plain = await readSealedAll(rig.h.dataDir.payloadFile(id), keys.unwrap(batch!.data_key!));
      expect(JSON.parse(plain.toString('utf8')).records).to.have.length(60_000);
    } finally {
      redis.disconnect();
      worker.child.kill('SIGCONT');
    }
  });
});
