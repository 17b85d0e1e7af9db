/**
 * SIGTERM with uploads and jobs in flight (test/security/CHECKLIST.md "Queue & crash faults"): the
 * process (role `all`, as `npm start` runs it) must stop cleanly and promptly, and nothing
 * may be lost: every upload that got success has a batch that finishes after a restart,
 * every upload that did not left nothing behind (no temp file, no batch row) — without
 * waiting for any sweep.
 *
 * "In flight" is made certain, not hoped for: two uploads are throttled (`sftp -l`) and
 * their temp files are seen growing; a large batch is seen being decrypted (its quarantine
 * file exists) when the signal is sent.
 */
import { expect } from 'chai';
import { promises as fsp } from 'node:fs';
import { sampleBatch } from '../../schemas/testing/sample-records.js';
import {
  FaultRig, allBatches, assertExactlyOneAckPerBatch, assertNoLeftovers, putOutcomes, sealedRandom, waitAllDone, waitExit,
  type PgwProcess, type TestPartner,
} from '../helpers/fault-tools.js';
import { waitFor } from '../helpers/wait-for.js';

describe('faults: SIGTERM with uploads and jobs in flight', function () {
  this.timeout(120_000);
  let rig: FaultRig;

  before(async () => {
    rig = await FaultRig.create();
  });

  after(async () => {
    await rig?.cleanup();
  });

  it('stops cleanly (exit 0, promptly); successful uploads finish after a restart, the others left nothing', async () => {
    const h = rig.h;
    const p: TestPartner = await rig.partner('kz-sigterm');
    const proc: PgwProcess = await h.start('all', { PGW_WORKER_CONCURRENCY: '1' });

    // Sealed one after another: all in the partner's one GnuPG home.
    const small: string[] = [];
    for (const i of [0, 1, 2]) small.push(await rig.seal(p, JSON.stringify(sampleBatch(3 + i, new Date())), `small-${i}.json.pgp`));
    // ~15 MB of JSON: its decrypt takes long enough to be caught in the act.
    const big = await rig.seal(p, JSON.stringify(sampleBatch(60_000, new Date())), 'big.json.pgp');
    const slow: string[] = [];
    for (const n of ['slow-a', 'slow-b']) slow.push(await sealedRandom(h, p, `${n}.json.pgp`, 3 * 1024 * 1024));

    // Two uploads throttled to 250 KB/s (12 s each): in flight when the signal comes.
    const slowRuns = await Promise.all(slow.map((f, i) => rig.startSftp(p, [`put ${f} /inbox/slow-${'ab'[i]}.json.pgp`], { limitKbit: 2000 })));
    await waitFor(async () => {
      const names = await fsp.readdir(h.dataDir.tmpDir);
      const sizes = await Promise.all(names.map((n) => fsp.stat(`${h.dataDir.tmpDir}/${n}`).then((s) => s.size, () => 0)));
      return sizes.filter((s) => s > 0).length === 2;
    }, 30_000, 'both throttled uploads writing to tmp/');

    // Small batches and the big one, at full speed: they get success and queue jobs.
    const remotes = ['small-0', 'small-1', 'small-2', 'big'].map((n) => `/inbox/${n}.json.pgp`);
    const fast = await rig.sftp(p, [...small, big].map((f, i) => `put ${f} ${remotes[i]}`));
    expect([...putOutcomes(fast, remotes).values()], fast.stderr).to.deep.equal(['ok', 'ok', 'ok', 'ok']);
    const bigId = await h.withLedger(async (l) => (await allBatches(l, [p.id])).find((b) => b.file_name === 'big.json.pgp')!.id);
    // The decrypt of the big batch is running (its quarantine file exists only meanwhile).
    const end = Date.now() + 30_000;
    while (!(await fsp.readdir(h.dataDir.quarantineDir)).some((n) => n.startsWith(`${bigId}.`))) {
      if (Date.now() > end) throw new Error('timed out waiting for the big batch\'s decrypt to start');
      await new Promise((r) => setTimeout(r, 5)); // tight poll: the decrypt lasts a few hundred ms
    }

    proc.child.kill('SIGTERM');
    const exit = await waitExit(proc, 30_000, 'pgw after SIGTERM');
    expect(exit.signal, 'not killed by the signal: an ordered stop').to.equal(null);
    expect(exit.code, proc.lines.slice(-10).join('\n')).to.equal(0);
    expect(exit.ms, 'stopped promptly').to.be.below(10_000);

    const slowResults = await Promise.all(slowRuns.map((r) => r.done));
    for (const r of slowResults) expect(r.code, 'a throttled upload cut off by the stop does not get success').to.not.equal(0);

    // Right after the stop, without any sweep: the cut-off uploads left nothing.
    expect(await fsp.readdir(h.dataDir.tmpDir), 'temp files of aborted uploads').to.deep.equal([]);
    const rows = await h.withLedger((l) => allBatches(l, [p.id]));
    expect(rows.map((b) => b.file_name).sort(), 'batch rows = successful uploads').to.deep.equal(['big.json.pgp', 'small-0.json.pgp', 'small-1.json.pgp', 'small-2.json.pgp']);
    // The job in flight was finished, not abandoned half-way.
    expect(await fsp.readdir(h.dataDir.quarantineDir), 'quarantine after a clean stop').to.deep.equal([]);
    expect(rows.find((b) => b.id === bigId)!.stage, 'the big batch\'s decrypt completed before the exit').to.not.equal('decrypt');
    expect(proc.lines.some((l) => l.includes('"message":"stopped"')), 'ordered shutdown ran to its end').to.equal(true);

    // Restart: everything that got success finishes, once.
    await h.start('all');
    await waitAllDone(h, 4, 60_000, [p.id]);
    const acked = await assertExactlyOneAckPerBatch(h, { partners: [p], count: 4 });
    for (const a of acked.values()) expect(a.batch.outcome, a.batch.file_name).to.equal('accepted');
    expect(acked.get(bigId)!.batch.records_total).to.equal(60_000);
    await assertNoLeftovers(h);
    // The restarted gateway is this test's: the next one starts its own (the leak check).
    await h.stopAll();
  });

  // `pgw start` takes signals before start-up finishes: a SIGTERM while starting (up to 10 s
  // waiting for Redis) must still end in an ordered stop, not Node's default kill.
  it('SIGTERM during start-up still ends in an ordered stop (exit 0)', async () => {
    const h = rig.h;
    const proc = h.start('all');
    const child = h.processes[h.processes.length - 1]!;
    await waitFor(() => child.lines.some((l) => l.includes('"message":"starting"')), 30_000, 'pgw starting');
    child.child.kill('SIGTERM');
    const exit = await waitExit(child, 30_000, 'pgw after SIGTERM during start-up');
    await proc.catch(() => {});
    expect(exit.signal).to.equal(null);
    expect(exit.code).to.equal(0);
  });
});
