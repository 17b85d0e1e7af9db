/**
 * Crash safety with real processes: `PGW_FAULT` makes a `pgw` process SIGKILL itself at a
 * named point; a fresh process must finish the batch with exactly one ack.
 */
import { expect } from 'chai';
import { promises as fsp } from 'node:fs';
import { GatewayHarness, type TestPartner } from '../../helpers/gateway-harness.js';
import { waitFor } from '../../helpers/wait-for.js';
import { sampleBatch } from '../../../schemas/testing/sample-records.js';
import { assertNoLeftovers } from '../../helpers/fault-tools.js';

async function exactlyOneAck(h: GatewayHarness, partner: TestPartner, fileName: string): Promise<string> {
  const ackName = `${fileName}.ack.pgp`;
  await h.waitForAck(partner.id, ackName, 'live', 60_000);
  const batch = await h.withLedger(async (l) => {
    let b;
    await waitFor(async () => {
      b = (await l.batches.list({ partnerId: partner.id })).find((x) => x.file_name === fileName);
      return b?.stage === 'done';
    }, 30_000, 'batch done');
    return b!;
  });
  const { acks, ackEvents } = await h.withLedger(async (l) => ({
    acks: await l.handle.db.selectFrom('acks').selectAll().where('batch_id', '=', batch.id).execute(),
    ackEvents: (await l.batches.events(batch.id)).filter((e) => e.stage === 'ack' && e.outcome === 'ok'),
  }));
  expect(acks, 'ack rows').to.have.length(1);
  expect(ackEvents, 'ack events').to.have.length(1);
  const outbox = (await fsp.readdir(h.dataDir.outboxDir(partner.id))).filter((n) => n !== 'test');
  expect(outbox).to.deep.equal([ackName]);
  const published = await fsp.readFile(h.dataDir.ackBlob(batch.id, 1));
  expect((await fsp.readFile(`${h.dataDir.outboxDir(partner.id)}/${ackName}`)).equals(published), 'outbox holds the one published ack').to.equal(true);
  const { ack } = await h.fetchAck(partner, `/outbox/${ackName}`);
  expect(ack.status).to.equal('accepted');
  return batch.id;
}

describe('crash recovery (PGW_FAULT kills the process mid-batch)', function () {
  this.timeout(120_000);

  // before-promote, before-ack-publish and before-outbox-rename leave a complete file under
  // a run's temp name (quarantine/, tmp/.tmp-*): the retry in the other process must clear
  // it, not the hour-later sweep, and the partner's outbox must hold only the ack.
  for (const fault of ['before-promote', 'after-decrypt', 'before-ack-publish', 'after-ack-written', 'before-outbox-rename'] as const) {
    it(`a worker SIGKILLed ${fault} is replaced and the batch gets exactly one ack`, async () => {
      const h = await GatewayHarness.create();
      try {
        await h.start('gateway');
        const doomed = await h.start('worker', { PGW_FAULT: fault });
        const p = await h.addPartner('kz-crash');
        const file = await h.seal(p, JSON.stringify(sampleBatch(3, new Date())), 'crash.json.pgp');
        const up = await h.sftp(p, [`put ${file} /inbox/crash.json.pgp`]);
        expect(up.code, up.stderr).to.equal(0);
        const exit = await doomed.exited;
        expect(exit.signal).to.equal('SIGKILL');
        await h.start('worker');
        await exactlyOneAck(h, p, 'crash.json.pgp');
        await assertNoLeftovers(h);
      } finally {
        await h.cleanup();
      }
    });
  }

  it('a gateway killed before enqueue gives no success reply, and the reconciler still finishes the batch', async () => {
    const h = await GatewayHarness.create();
    try {
      const gw = await h.start('gateway', { PGW_FAULT: 'before-enqueue' });
      const p = await h.addPartner('kz-crash');
      const file = await h.seal(p, JSON.stringify(sampleBatch(3, new Date())), 'lost.json.pgp');
      const up = await h.sftp(p, [`put ${file} /inbox/lost.json.pgp`]);
      expect(up.code, 'the client must not see success').not.to.equal(0);
      expect((await gw.exited).signal).to.equal('SIGKILL');
      await h.start('all');
      await exactlyOneAck(h, p, 'lost.json.pgp');
    } finally {
      await h.cleanup();
    }
  });
});
