/**
 * Redis faults against a PRIVATE redis-server (no persistence) that the test kills,
 * flushes, fills and reconfigures (test/security/CHECKLIST.md "Queue & crash faults"):
 * (a) killed and restarted empty while batches are in flight, (b) FLUSHALL mid-pipeline,
 * (c) down or out of memory during ingest, (d) eviction policy / AOF checks at start,
 * (e) an outage of 20 s (the threat named is 90 s; 20 s exercises the same reconnect path —
 * ioredis backs off to its 5 s ceiling after ~5 s — and keeps CI time down).
 *
 * The gateway and the worker run as separate processes so that the worker can be frozen
 * (SIGSTOP) while uploads queue up: that makes "in flight" deterministic — jobs waiting in
 * Redis, one being worked on — instead of a race against a fast pipeline.
 */
import { expect } from 'chai';
import { sampleBatch } from '../../schemas/testing/sample-records.js';
import {
  FaultRig, PrivateRedis, allBatches, assertExactlyOneAckPerBatch, logs, putOutcomes, runPgwExpectingExit, waitAllDone,
  waitExit, type PgwProcess, type TestPartner,
} from '../helpers/fault-tools.js';
import { waitFor } from '../helpers/wait-for.js';
import type { Batch } from '../../gateway/core/ledger/index.js';

describe('faults: Redis', function () {
  this.timeout(120_000);
  let rig: FaultRig;
  let gateway: PgwProcess;
  let worker: PgwProcess;

  before(async () => {
    rig = await FaultRig.create();
    // Concurrency 1: the pipeline of a handful of batches then takes long enough to be caught mid-way.
    [gateway, worker] = await Promise.all([rig.h.start('gateway'), rig.h.start('worker', { PGW_WORKER_CONCURRENCY: '1' })]);
  });

  after(async () => {
    await rig?.cleanup();
  });

  async function upload(p: TestPartner, names: string[]): Promise<void> {
    // Sealed one after another: all in the partner's one GnuPG home.
    const files: string[] = [];
    for (const [i, n] of names.entries()) files.push(await rig.seal(p, JSON.stringify(sampleBatch(2 + i, new Date())), n));
    const remotes = names.map((n) => `/inbox/${n}`);
    const r = await rig.sftp(p, files.map((f, i) => `put ${f} ${remotes[i]}`));
    const outcomes = putOutcomes(r, remotes);
    expect([...outcomes.values()], `uploads (stderr: ${r.stderr.trim()})`).to.deep.equal(remotes.map(() => 'ok'));
  }

  /**
   * Freeze the worker, upload `n` batches (their jobs wait in Redis), unfreeze it and return
   * as soon as the first batch has left the decrypt stage: the rest is in flight.
   */
  async function pipelineInFlight(p: TestPartner, n: number): Promise<void> {
    worker.child.kill('SIGSTOP');
    try {
      await upload(p, Array.from({ length: n }, (_, i) => `inflight-${i}.json.pgp`));
    } finally {
      worker.child.kill('SIGCONT');
    }
    await rig.h.withLedger(async (l) => {
      const end = Date.now() + 30_000;
      for (;;) {
        const rows = await allBatches(l, [p.id]);
        if (rows.some((b) => b.stage !== 'decrypt')) return;
        if (Date.now() > end) throw new Error('timed out waiting for the pipeline to start');
        await new Promise((r) => setTimeout(r, 5)); // tight poll: the pipeline is fast
      }
    });
  }

  async function stagesOf(p: TestPartner): Promise<Batch[]> {
    return rig.h.withLedger((l) => allBatches(l, [p.id]));
  }

  /** Batches the reconciler re-enqueued (worker log) since line `from`. */
  function requeued(from: number): string[] {
    return logs({ ...worker, lines: worker.lines.slice(from) }, 'reconciler re-enqueued batch').map((l) => String(l.batch));
  }

  it('(a) Redis SIGKILLed and restarted empty mid-pipeline: the reconciler restores the work, one ack per batch', async () => {
    const p = await rig.partner('kz-redis-kill');
    await pipelineInFlight(p, 6);
    await rig.redis.restart(); // SIGKILL, then a new empty redis-server on the same port
    const mark = worker.lines.length;
    const atFault = await stagesOf(p);
    const unfinished = atFault.filter((b) => b.stage !== 'done').map((b) => b.id);
    expect(unfinished.length, 'batches in flight when Redis died').to.be.at.least(2);

    await waitAllDone(rig.h, 6, 45_000, [p.id]);
    await assertExactlyOneAckPerBatch(rig.h, { partners: [p], count: 6 });
    const restored = requeued(mark);
    expect(restored.length, 'the reconciler re-enqueued lost work').to.be.at.least(1);
    expect(unfinished, 're-enqueued batches were unfinished at the fault').to.include.members([...new Set(restored)]);
    expect(gateway.child.exitCode ?? gateway.child.signalCode, 'the gateway kept running').to.equal(null);
    expect(worker.child.exitCode ?? worker.child.signalCode, 'the worker kept running').to.equal(null);
  });

  it('(b) FLUSHALL mid-pipeline: the reconciler restores the work, one ack per batch', async () => {
    const p = await rig.partner('kz-redis-flush');
    await pipelineInFlight(p, 6);
    const mark = worker.lines.length;
    expect(await rig.redis.cli('FLUSHALL')).to.equal('OK');
    const unfinished = (await stagesOf(p)).filter((b) => b.stage !== 'done').map((b) => b.id);
    expect(unfinished.length, 'batches in flight when Redis was flushed').to.be.at.least(2);

    await waitAllDone(rig.h, 6, 45_000, [p.id]);
    await assertExactlyOneAckPerBatch(rig.h, { partners: [p], count: 6 });
    expect(requeued(mark).length, 'the reconciler re-enqueued lost work').to.be.at.least(1);
  });

  it('(c) Redis down during ingest: the upload still succeeds (durable in the ledger) and is processed once Redis is back', async () => {
    const p = await rig.partner('kz-redis-down');
    const gwMark = gateway.lines.length;
    await rig.redis.kill();
    const t0 = Date.now();
    await upload(p, ['while-down.json.pgp']);
    const uploadMs = Date.now() - t0;
    const [b] = await stagesOf(p);
    expect(b?.stage, 'the batch is in the ledger, waiting for decrypt').to.equal('decrypt');
    expect(logs({ ...gateway, lines: gateway.lines.slice(gwMark) }, 'enqueue failed; reconciler will retry').map((l) => l.batch)).to.deep.equal([b!.id]);
    expect(uploadMs, 'the upload does not hang on the missing queue').to.be.below(15_000);

    await rig.redis.restart();
    await waitAllDone(rig.h, 1, 30_000, [p.id]);
    const acked = await assertExactlyOneAckPerBatch(rig.h, { partners: [p], count: 1 });
    expect(acked.get(b!.id)!.batch.outcome).to.equal('accepted');
  });

  it('(c) Redis out of memory (noeviction) during ingest: the upload still succeeds and is processed once memory is back', async () => {
    const p = await rig.partner('kz-redis-oom');
    const gwMark = gateway.lines.length;
    expect(await rig.redis.cli('CONFIG', 'SET', 'maxmemory', '1')).to.equal('OK'); // every write is refused with OOM
    try {
      await upload(p, ['oom.json.pgp']);
      const [b] = await stagesOf(p);
      expect(b?.stage).to.equal('decrypt');
      const failed = logs({ ...gateway, lines: gateway.lines.slice(gwMark) }, 'enqueue failed; reconciler will retry');
      expect(failed.map((l) => l.batch), 'the enqueue was refused').to.deep.equal([b!.id]);
    } finally {
      await rig.redis.cli('CONFIG', 'SET', 'maxmemory', '0');
    }
    await waitAllDone(rig.h, 1, 30_000, [p.id]);
    await assertExactlyOneAckPerBatch(rig.h, { partners: [p], count: 1 });
  });

  it('(e) a 20 s Redis outage: the workers resume by themselves, no batch is lost', async () => {
    const OUTAGE_MS = 20_000;
    const p = await rig.partner('kz-redis-outage');
    const pids = [gateway.child.pid, worker.child.pid];
    await pipelineInFlight(p, 4);
    const workerMark = worker.lines.length;
    await rig.redis.kill();
    const outageEnds = Date.now() + OUTAGE_MS;
    await upload(p, ['during-outage-1.json.pgp', 'during-outage-2.json.pgp']);
    const during = (await stagesOf(p)).filter((b) => b.file_name.startsWith('during-outage')).map((b) => b.id);
    expect(during).to.have.length(2);
    // The outage lasts OUTAGE_MS (the fault's duration, not a wait for a condition). Meanwhile
    // nothing uploaded during it may move: no queue means no worker can have seen it.
    await rig.h.withLedger(async (l) => {
      while (Date.now() < outageEnds) {
        const rows = (await allBatches(l, [p.id])).filter((b) => during.includes(b.id));
        expect(rows.map((b) => b.stage), 'progress without Redis?').to.deep.equal(['decrypt', 'decrypt']);
        await new Promise((r) => setTimeout(r, Math.min(500, Math.max(0, outageEnds - Date.now()))));
      }
    });
    // Noticed, and said once — the address and what to check — not once per reconnect of each connection.
    const outageLines = (proc: PgwProcess, mark: number) => logs({ ...proc, lines: proc.lines.slice(mark) }).filter((l) => l.code === 'redis.unreachable');
    const said = outageLines(worker, workerMark);
    expect(said.map((l) => [l.level, l.address]), 'the worker said it once').to.deep.equal([['error', rig.redis.url]]);
    expect(said[0]!.cause).to.be.oneOf(['ECONNRESET', 'ECONNREFUSED']); // the kill resets the open connections
    expect(String(said[0]!.message)).to.include(`Redis at ${rig.redis.url} does not answer`).and.include('PGW_REDIS_URL');
    expect(logs({ ...worker, lines: worker.lines.slice(workerMark) }).filter((l) => l.message === 'worker error'), 'no warning per worker').to.deep.equal([]);
    const workerBack = worker.lines.length;
    await rig.redis.restart();
    await waitFor(() => logs({ ...worker, lines: worker.lines.slice(workerBack) }).some((l) => l.message === `Redis at ${rig.redis.url} answers again`), 30_000, 'the worker says Redis answers again');

    await waitAllDone(rig.h, 6, 45_000, [p.id]);
    // New work after the outage goes through the gateway's producer and the workers' consumers.
    const t0 = Date.now();
    await upload(p, ['after-outage.json.pgp']);
    await waitAllDone(rig.h, 7, 20_000, [p.id]);
    const afterMs = Date.now() - t0;
    expect(afterMs, 'a new batch after the outage is processed promptly').to.be.below(15_000);
    await assertExactlyOneAckPerBatch(rig.h, { partners: [p], count: 7 });
    expect([gateway.child.pid, worker.child.pid], 'no process was restarted').to.deep.equal(pids);
    expect([gateway.child.exitCode, worker.child.exitCode]).to.deep.equal([null, null]);
  });

  describe('(d) Redis configuration checked at start', () => {
    const servers: PrivateRedis[] = [];
    const redis = async (args: string[]) => {
      const r = await PrivateRedis.start(args);
      servers.push(r);
      return r;
    };
    after(async () => {
      for (const r of servers) await r.close();
    });
    // SIGKILL: a clean stop is not what these tests are about, and a SIGTERM right after
    // "started" can still hit the default action (see test/faults/sigterm.test.ts).
    const stop = async (p: PgwProcess) => {
      p.child.kill('SIGKILL');
      await waitExit(p, 15_000, 'pgw');
    };

    it('production refuses a Redis whose maxmemory-policy is allkeys-lru (redis.policy, non-zero exit)', async () => {
      const r = await redis(['--maxmemory-policy', 'allkeys-lru']);
      const res = await runPgwExpectingExit(rig.h, ['start', '--role', 'all'], { PGW_ENV: 'production', PGW_REDIS_URL: r.url }, 30_000);
      expect(res.started, 'started on an evicting Redis').to.equal(false);
      expect(res.code, res.lines.join('\n')).to.not.equal(0);
      expect(res.lines.join('\n')).to.match(/^pgw: redis\.policy: .*allkeys-lru/m);
    });

    it('production refuses it also when CONFIG is disabled (as on managed Redis)', async () => {
      const r = await redis(['--maxmemory-policy', 'allkeys-lru', '--rename-command', 'CONFIG', '']);
      const res = await runPgwExpectingExit(rig.h, ['start', '--role', 'all'], { PGW_ENV: 'production', PGW_REDIS_URL: r.url }, 30_000);
      expect(res.started, 'started on an evicting Redis').to.equal(false);
      expect(res.code, res.lines.join('\n')).to.not.equal(0);
      expect(res.lines.join('\n')).to.match(/^pgw: redis\.policy: .*allkeys-lru/m);
    });

    it('a test profile only warns about the eviction policy and starts', async () => {
      const r = await redis(['--maxmemory-policy', 'allkeys-lru']);
      const p = await rig.h.start('worker', { PGW_ENV: 'test', PGW_REDIS_URL: r.url });
      expect(logs(p, 'Redis maxmemory-policy is not noeviction: queued jobs may be evicted').map((l) => l.policy)).to.deep.equal(['allkeys-lru']);
      await stop(p);
    });

    it('production with noeviction starts, and warns when AOF is off (not when it is on)', async () => {
      const aofOff = await redis(['--maxmemory-policy', 'noeviction']);
      const aofOn = await redis(['--maxmemory-policy', 'noeviction', '--appendonly', 'yes']);
      const [off, on] = await Promise.all([
        rig.h.start('worker', { PGW_ENV: 'production', PGW_REDIS_URL: aofOff.url }),
        rig.h.start('worker', { PGW_ENV: 'production', PGW_REDIS_URL: aofOn.url }),
      ]);
      const aofWarning = (p: PgwProcess) => logs(p).filter((l) => /AOF persistence is off/.test(String(l.message)));
      expect(aofWarning(off), 'AOF off: warned').to.have.length(1);
      expect(aofWarning(on), 'AOF on: no warning').to.have.length(0);
      await Promise.all([stop(off), stop(on)]);
    });
  });
});
