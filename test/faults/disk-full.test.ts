/**
 * Disk full (test/security/CHECKLIST.md "Queue & crash faults"): the data dir lives on a real 8 MiB tmpfs
 * (tmp/ and spool/ must share one filesystem for the atomic rename, so the whole data dir is
 * on it); the SQLite ledger lives elsewhere (PGW_DATABASE_URL) so that the ledger is not
 * what fills up. Needs root (mount); skipped with the reason otherwise.
 * - an upload larger than the free space fails with a clear status, its temp file is
 *   removed, there is no batch and nothing is acked; a small upload afterwards works;
 * - a full disk while the worker writes its quarantine is a transient failure: retried,
 *   then accepted once there is space again.
 */
import { expect } from 'chai';
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { sampleBatch } from '../../schemas/testing/sample-records.js';
import {
  FaultRig, allBatches, assertExactlyOneAckPerBatch, assertNoLeftovers, fillDisk, freeBytes, logs, mountTmpfs, sealedRandom,
  waitAllDone, type PgwProcess, type Tmpfs,
} from '../helpers/fault-tools.js';
import { waitFor } from '../helpers/wait-for.js';

describe('faults: disk full', function () {
  this.timeout(120_000);
  let rig: FaultRig | undefined;
  let fs: Tmpfs;
  let gateway: PgwProcess;
  let worker: PgwProcess;

  before(async function () {
    const m = await mountTmpfs(8);
    if ('skip' in m) {
      console.log(`      skipped: ${m.skip}`);
      // CI runs as root, so it runs there; elsewhere a full disk cannot be produced without filling the real one.
      // Reason: mounting a tmpfs needs root.
      this.skip();
      return;
    }
    fs = m;
    const ledgerDir = await fsp.mkdtemp(path.join(os.tmpdir(), 'pgwf-ledger-'));
    try {
      rig = await FaultRig.create({
        env: { PGW_DATA_DIR: path.join(m.dir, 'data'), PGW_DATABASE_URL: `sqlite:${path.join(ledgerDir, 'ledger.db')}`, PGW_LOG_LEVEL: 'debug' },
      });
    } catch (err) {
      await m.unmount();
      await fsp.rm(ledgerDir, { recursive: true, force: true });
      throw err;
    }
    // Cleanups run last-registered first, after every process is gone.
    rig.onCleanup(() => m.unmount());
    rig.onCleanup(() => fsp.rm(ledgerDir, { recursive: true, force: true }));
    [gateway, worker] = await Promise.all([rig.h.start('gateway'), rig.h.start('worker')]);
  });

  after(async () => {
    worker?.child.kill('SIGCONT');
    await rig?.cleanup();
  });

  it('an upload larger than the free space fails with a clear status; temp removed, no batch, nothing acked; a small upload then works', async () => {
    const h = rig!.h;
    const p = await rig!.partner('kz-diskfull');
    const free = await freeBytes(fs.dir);
    const huge = await sealedRandom(h, p, 'huge.json.pgp', free + 2 * 1024 * 1024);
    const mark = gateway.lines.length;

    const r = await rig!.sftp(p, [`put ${huge} /inbox/huge.json.pgp`]);
    expect(r.code, 'the client must not see success').to.not.equal(0);
    expect(r.stderr, 'OpenSSH shows the status (it prints its own text for the code)').to.match(/Failure/i);
    // What the gateway answered: FAILURE with the stable code (OpenSSH does not print the message).
    const answered = logs({ ...gateway, lines: gateway.lines.slice(mark) }).filter((l) => l.code === 'upload.storage_failed');
    expect(answered.length, 'requests answered upload.storage_failed').to.be.at.least(1);

    // The temp file is removed (not left for a sweep) and the space is back.
    await waitFor(async () => (await fsp.readdir(h.dataDir.tmpDir)).length === 0, 10_000, 'the temp file of the failed upload to go');
    expect(await freeBytes(fs.dir), 'free space after the failed upload').to.be.at.least(free - 256 * 1024);
    expect(await h.withLedger((l) => allBatches(l)), 'no batch').to.deep.equal([]);
    expect(await h.withLedger((l) => l.handle.db.selectFrom('acks').selectAll().execute()), 'nothing acked').to.deep.equal([]);
    expect(await fsp.readdir(h.dataDir.outboxDir(p.id)), 'empty outbox').to.deep.equal(['test']);
    expect(await fsp.readdir(h.dataDir.spoolDir), 'nothing spooled').to.deep.equal([]);

    const small = await rig!.seal(p, JSON.stringify(sampleBatch(3, new Date())), 'small.json.pgp');
    const ok = await rig!.sftp(p, [`put ${small} /inbox/small.json.pgp`]);
    expect(ok.code, ok.stderr).to.equal(0);
    await waitAllDone(h, 1, 30_000, [p.id]);
    const [a] = (await assertExactlyOneAckPerBatch(h, { partners: [p], count: 1 })).values();
    expect(a!.batch.outcome).to.equal('accepted');
    await assertNoLeftovers(h);
  });

  it('a full disk while the worker writes its quarantine is transient: retried, then accepted once there is space', async () => {
    const h = rig!.h;
    const p = await rig!.partner('kz-diskfull2');
    const file = await rig!.seal(p, JSON.stringify(sampleBatch(5, new Date())), 'squeezed.json.pgp');
    const filler = path.join(fs.dir, 'filler.bin'); // outside the data dir: nothing of ours
    worker.child.kill('SIGSTOP'); // the job waits until the disk is full
    let id: string;
    try {
      const up = await rig!.sftp(p, [`put ${file} /inbox/squeezed.json.pgp`]);
      expect(up.code, up.stderr).to.equal(0);
      id = (await h.withLedger((l) => allBatches(l, [p.id])))[0]!.id;
      await fillDisk(filler);
      expect(await freeBytes(fs.dir), 'disk full').to.equal(0);
    } finally {
      worker.child.kill('SIGCONT');
    }
    const failed = () => logs(worker, 'stage failed').filter((l) => l.batch === id);
    try {
      await waitFor(() => failed().length >= 1, 30_000, 'a decrypt attempt failing on the full disk');
    } finally {
      await fsp.rm(filler, { force: true });
    }
    expect(failed().map((l) => [l.stage, (l.err as { code?: string }).code, l.final])[0]).to.deep.equal(['decrypt', 'ENOSPC', false]);

    await waitAllDone(h, 1, 30_000, [p.id]);
    const a = (await assertExactlyOneAckPerBatch(h, { partners: [p], count: 1 })).get(id)!;
    expect(a.batch.outcome, 'retried to success, not rejected').to.equal('accepted');
    await assertNoLeftovers(h);
  });
});
