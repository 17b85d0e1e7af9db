/**
 * Crash matrix of the upload path (test/security/CHECKLIST.md "Queue & crash faults"): a gateway with
 * `PGW_FAULT=<point>` SIGKILLs itself at each step of an upload. For every point:
 * - the OpenSSH client must not report success (nothing was acknowledged to the partner);
 * - before the ledger write there is no batch at all, only a leftover the sweep removes,
 *   and the partner's re-upload is processed once (not as a duplicate);
 * - from the ledger write on, the batch is finished by the reconciler with one ack, and the
 *   partner's re-upload (it saw no success) is answered as `batch.duplicate` of it;
 * - after a sweep: no temp file, no orphan spool file, every batch exactly one ack.
 *
 * The five doomed gateways run side by side on one data dir and ledger (as several
 * gateway hosts would), each with its own partner, to keep the suite fast. The worker
 * points (after-decrypt, after-ack-written) are covered by
 * test/integration/e2e/crash-recovery.test.ts: here a normal worker runs all along and
 * would take their jobs, so they would need a rig of their own.
 */
import { expect } from 'chai';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { sampleBatch } from '../../schemas/testing/sample-records.js';
import {
  FaultRig, allBatches, assertExactlyOneAckPerBatch, assertNoLeftovers, forceSweep, sha256File, waitAllDone, waitExit,
  type PgwProcess, type TestPartner,
} from '../helpers/fault-tools.js';
import type { Batch } from '../../gateway/core/ledger/index.js';

type Point = 'after-temp-write' | 'after-fsync' | 'after-rename' | 'after-ledger' | 'before-enqueue';

/** What each crash point must leave behind (before any sweep). */
const MATRIX: { point: Point; ledgerRow: boolean; leftover: 'temp file' | 'orphan spool file' | 'ledger row' }[] = [
  { point: 'after-temp-write', ledgerRow: false, leftover: 'temp file' },
  { point: 'after-fsync', ledgerRow: false, leftover: 'temp file' },
  { point: 'after-rename', ledgerRow: false, leftover: 'orphan spool file' },
  { point: 'after-ledger', ledgerRow: true, leftover: 'ledger row' },
  { point: 'before-enqueue', ledgerRow: true, leftover: 'ledger row' },
];

interface Case {
  point: Point;
  partner: TestPartner;
  name: string;
  file: string;
  sha256: string;
  size: number;
  upload: { code: number; stderr: string };
  exit: { code: number | null; signal: NodeJS.Signals | null };
  /** Right after the crash, before any restart or sweep. */
  tempFiles: { name: string; size: number }[];
  orphanSpool: string[];
  rows: Batch[];
}

describe('faults: gateway SIGKILLed at each step of an upload', function () {
  this.timeout(180_000);
  let rig: FaultRig;
  const cases = new Map<Point, Case>();

  before(async function () {
    rig = await FaultRig.create();
    const h = rig.h;
    const partners: TestPartner[] = [];
    for (let i = 0; i < MATRIX.length; i++) partners.push(await rig.partner(`kz-crash${i}`));
    const prepared = await Promise.all(MATRIX.map(async (m, i) => {
      const name = `${m.point}.json.pgp`;
      const file = await rig.seal(partners[i]!, JSON.stringify(sampleBatch(3 + i, new Date())), name);
      return { m, partner: partners[i]!, name, file, sha256: await sha256File(file), size: (await fsp.stat(file)).size };
    }));

    // One normal worker (stages + reconciler) and one doomed gateway per point, side by side.
    const [, ...gateways] = await Promise.all([
      h.start('worker'),
      ...MATRIX.map((m) => h.start('gateway', { PGW_FAULT: m.point })),
    ]) as PgwProcess[];

    await Promise.all(prepared.map(async (c, i) => {
      const gw = gateways[i]!;
      const upload = await rig.sftp(c.partner, [`put ${c.file} /inbox/${c.name}`], { port: gw.port! });
      const exit = await waitExit(gw, 30_000, `gateway with PGW_FAULT=${c.m.point}`);
      cases.set(c.m.point, {
        point: c.m.point, partner: c.partner, name: c.name, file: c.file, sha256: c.sha256, size: c.size,
        upload, exit, tempFiles: [], orphanSpool: [], rows: [],
      });
    }));

    // Snapshot what each crash left, before a normal gateway starts.
    const tmp = await fsp.readdir(h.dataDir.tmpDir);
    const spool = await fsp.readdir(h.dataDir.spoolDir);
    await h.withLedger(async (l) => {
      const batches = await allBatches(l);
      for (const c of cases.values()) {
        for (const n of tmp.filter((x) => x.startsWith(`${c.partner.id}-`))) {
          c.tempFiles.push({ name: n, size: (await fsp.stat(path.join(h.dataDir.tmpDir, n))).size });
        }
        for (const n of spool) {
          if (batches.some((b) => `${b.id}.pgp` === n)) continue;
          if ((await sha256File(path.join(h.dataDir.spoolDir, n))) === c.sha256) c.orphanSpool.push(n);
        }
        c.rows = batches.filter((b) => b.partner_id === c.partner.id);
      }
    });
    await h.start('gateway');
  });

  after(async () => {
    await rig?.cleanup();
  });

  for (const m of MATRIX) {
    it(`${m.point}: no success reply; ${m.ledgerRow ? 'the batch is finished with one ack, a re-upload is a duplicate' : 'no batch, a re-upload is processed once'}`, async () => {
      const c = cases.get(m.point)!;
      const h = rig.h;
      expect(c.exit.signal, 'the gateway killed itself at the fault point').to.equal('SIGKILL');
      expect(c.upload.code, `sftp must not report success (stderr: ${c.upload.stderr.trim()})`).to.not.equal(0);

      // What the crash left behind.
      if (m.leftover === 'temp file') {
        expect(c.tempFiles.map((t) => t.size), 'one temp file holding the whole upload').to.deep.equal([c.size]);
      } else {
        expect(c.tempFiles, 'no temp file').to.deep.equal([]);
      }
      expect(c.orphanSpool, 'orphan spool files').to.have.length(m.leftover === 'orphan spool file' ? 1 : 0);
      expect(c.rows.map((b) => b.sha256), 'ledger rows right after the crash').to.deep.equal(m.ledgerRow ? [c.sha256] : []);

      // The partner saw no success and uploads the same file again, to the restarted gateway.
      if (m.ledgerRow) {
        // The reconciler finishes the first batch on its own; then the re-upload comes.
        await waitAllDone(h, 1, 30_000, [c.partner.id]);
      }
      const again = await rig.sftp(c.partner, [`put ${c.file} /inbox/${c.name}`]);
      expect(again.code, again.stderr).to.equal(0);
      const batches = await waitAllDone(h, m.ledgerRow ? 2 : 1, 30_000, [c.partner.id]);
      const acked = await assertExactlyOneAckPerBatch(h, { partners: [c.partner], count: m.ledgerRow ? 2 : 1 });
      const first = acked.get(batches[0]!.id)!;
      expect(first.batch.sha256).to.equal(c.sha256);
      expect(first.batch.outcome, 'the batch is accepted').to.equal('accepted');
      expect(first.batch.duplicate_of).to.equal(null);
      expect(first.ack!.fileName).to.equal(c.name);
      const outbox = await fsp.readdir(h.dataDir.outboxFor(c.partner.id, 'live'));
      expect(outbox, 'the first batch holds the plain ack name').to.include(`${c.name}.ack.pgp`);
      if (m.ledgerRow) {
        const dup = acked.get(batches[1]!.id)!;
        expect(dup.batch.outcome).to.equal('rejected');
        expect(dup.batch.error_code).to.equal('batch.duplicate');
        expect(dup.batch.duplicate_of, 'the duplicate names the first batch').to.equal(first.batch.id);
        expect((dup.ack!.reason as { code: string }).code).to.equal('batch.duplicate');
        expect(outbox, 'the duplicate\'s ack does not replace the first one').to.include(`${c.name}.${dup.batch.id}.ack.pgp`);
      }
    });
  }

  it('a sweep removes every temp file, orphan spool file and stray outbox link, keeps every batch\'s spool file; every batch has exactly one ack', async () => {
    const h = rig.h;
    const leftovers = [...cases.values()].flatMap((c) => [
      ...c.tempFiles.map((t) => path.join(h.dataDir.tmpDir, t.name)),
      ...c.orphanSpool.map((n) => path.join(h.dataDir.spoolDir, n)),
    ]);
    expect(leftovers, 'the crashes left files to sweep').to.have.length(3);
    for (const f of leftovers) expect(await fsp.stat(f).then(() => true, () => false), `${f} still there before the sweep`).to.equal(true);

    // A worker killed between the ack stage's link and rename leaves this in an outbox.
    const c0 = cases.get('after-temp-write')!;
    const [firstId] = (await h.withLedger((l) => allBatches(l, [c0.partner.id]))).map((b) => b.id);
    const strayLink = path.join(h.dataDir.outboxFor(c0.partner.id, 'live'), `.tmp-0123456789abcdef-${c0.name}.ack.pgp`);
    await fsp.link(h.dataDir.ackBlob(firstId!, 1), strayLink);
    leftovers.push(strayLink);

    await forceSweep(h);

    for (const f of leftovers) expect(await fsp.stat(f).then(() => true, () => false), `${f} swept`).to.equal(false);
    await assertNoLeftovers(h);
    const acked = await assertExactlyOneAckPerBatch(h, { partners: rig.partners, count: 7 });
    for (const id of acked.keys()) {
      expect(await fsp.stat(h.dataDir.spoolFile(id)).then(() => true, () => false), `spool file of ${id} kept`).to.equal(true);
    }
  });
});
