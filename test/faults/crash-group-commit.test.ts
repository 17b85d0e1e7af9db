/**
 * Crash matrix, group commit (issue 25): CLOSEs of several sessions share the spool
 * directory's fsync (gateway/ingest/dir-sync.ts). A gateway SIGKILLed while four sessions
 * upload one file after another — so that some CLOSEs are answered, some share an fsync in
 * flight and some have not begun — must leave:
 * - every file sftp reported as uploaded in the ledger, its spool file byte-identical
 *   (nothing acknowledged is lost);
 * - every ledger row with a complete spool file (nothing unacknowledged is a half batch);
 * - after a restart and a sweep: no leftovers, every batch exactly one ack, and the
 *   partners' re-uploads of what they saw fail are processed (as new or as duplicates).
 * The moment of the kill is whenever the ledger first holds a few batches: every
 * assertion holds for any moment, so the test does not depend on where it lands.
 */
import { expect } from 'chai';
import { promises as fsp } from 'node:fs';

import { sampleBatch } from '../../schemas/testing/sample-records.js';
import {
  FaultRig, allBatches, assertExactlyOneAckPerBatch, assertNoLeftovers, forceSweep, putOutcomes, sha256File, waitAllDone,
  waitExit, waitForBatches, type TestPartner,
} from '../helpers/fault-tools.js';

const SESSIONS = 4;
const FILES = 15;

describe('faults: gateway SIGKILLed while concurrent CLOSEs share a directory fsync', function () {
  this.timeout(240_000);
  it('loses nothing acknowledged, leaves no half batch, and recovers', async () => {
    const rig = await FaultRig.create();
    try {
      await scenario(rig);
    } finally {
      await rig.cleanup();
    }
  });
});

async function scenario(rig: FaultRig): Promise<void> {
  const h = rig.h;
  const partners: TestPartner[] = [];
  for (let i = 0; i < SESSIONS; i++) partners.push(await rig.partner(`kz-group${i}`));
  const files = new Map<string, { partner: TestPartner; name: string; file: string; sha256: string }>();
  for (const [i, p] of partners.entries()) {
    for (let k = 0; k < FILES; k++) {
      const name = `g${i}-${k}.json.pgp`;
      const file = await rig.seal(p, JSON.stringify(sampleBatch(2 + k, new Date())), name);
      files.set(`${p.id}/${name}`, { partner: p, name, file, sha256: await sha256File(file) });
    }
  }
  const gw = await h.start('gateway');
  const runs = await Promise.all(partners.map((p) => rig.startSftp(p, [...files.values()]
    .filter((f) => f.partner === p).map((f) => `put ${f.file} /inbox/${f.name}`))));
  await waitForBatches(h, (b) => b.length >= SESSIONS, 60_000, 'a few batches in the ledger');
  gw.child.kill('SIGKILL');
  await waitExit(gw, 30_000, 'the killed gateway');
  const results = await Promise.all(runs.map((r) => r.done));

  // Right after the crash, before any restart or sweep.
  const rows = await h.withLedger((l) => allBatches(l));
  const acknowledged: string[] = [];
  for (const [i, p] of partners.entries()) {
    const mine = [...files.values()].filter((f) => f.partner === p);
    const outcomes = putOutcomes(results[i]!, mine.map((f) => `/inbox/${f.name}`));
    for (const f of mine) if (outcomes.get(`/inbox/${f.name}`) === 'ok') acknowledged.push(`${p.id}/${f.name}`);
  }
  expect(acknowledged.length, 'some CLOSEs were answered before the kill').to.be.greaterThan(0);
  for (const key of acknowledged) {
    const f = files.get(key)!;
    const row = rows.find((b) => b.partner_id === f.partner.id && b.file_name === f.name);
    expect(row, `${key} was acknowledged: its ledger row`).to.not.equal(undefined);
    expect(row!.sha256).to.equal(f.sha256);
  }
  for (const b of rows) {
    expect(await sha256File(h.dataDir.spoolFile(b.id)), `spool file of ${b.id} complete`).to.equal(b.sha256);
  }

  // Restart; the partners upload again what they did not see succeed.
  await Promise.all([h.start('gateway'), h.start('worker')]);
  await waitAllDone(h, rows.length, 60_000);
  const again = [...files.entries()].filter(([key]) => !acknowledged.includes(key)).map(([, f]) => f);
  for (const p of partners) {
    const mine = again.filter((f) => f.partner === p);
    if (mine.length === 0) continue;
    const r = await rig.sftp(p, mine.map((f) => `put ${f.file} /inbox/${f.name}`));
    expect(r.code, r.stderr).to.equal(0);
  }
  const total = rows.length + again.length;
  const done = await waitAllDone(h, total, 90_000);
  for (const f of files.values()) {
    const mine = done.filter((b) => b.partner_id === f.partner.id && b.file_name === f.name);
    expect(mine.filter((b) => b.duplicate_of === null), `${f.name}: one batch that is not a duplicate`).to.have.length(1);
    expect(mine[0]!.sha256).to.equal(f.sha256);
  }
  await forceSweep(h);
  await assertNoLeftovers(h);
  await assertExactlyOneAckPerBatch(h, { partners, count: total });
  for (const b of done) expect(await fsp.stat(h.dataDir.spoolFile(b.id)).then(() => true, () => false), `spool file of ${b.id} kept`).to.equal(true);
}
