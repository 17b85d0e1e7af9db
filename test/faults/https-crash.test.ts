/**
 * The crash matrix's promise for the HTTPS channel: a gateway SIGKILLed in the middle of a
 * `curl` upload never answers 202 for anything not durable, and because a PUT of the same
 * name and bytes is an idempotent retry, the partner's retry after the crash is answered
 * with the batch that did become durable (200) — or stored anew (202) if none did. Either
 * way every batch ends with exactly one ack.
 */
import { expect } from 'chai';
import { promises as fsp } from 'node:fs';
import { sampleBatch } from '../../schemas/testing/sample-records.js';
import { FaultRig, assertExactlyOneAckPerBatch, forceSweep, waitAllDone, waitExit, type PgwProcess } from '../helpers/fault-tools.js';
import { curl } from '../helpers/https-client.js';
import { issueToken } from '../../gateway/admin/api-tokens.js';

describe('faults: gateway SIGKILLed during an HTTPS upload', function () {
  this.timeout(180_000);
  let rig: FaultRig;

  before(async () => {
    rig = await FaultRig.create();
    await rig.h.start('worker'); // stages + reconciler, all along
  });

  after(async () => {
    await rig?.cleanup();
  });

  for (const [point, durable] of [['after-fsync', false], ['after-ledger', true]] as const) {
    it(`${point}: no 202 for the interrupted upload; the retry gets ${durable ? 'the durable batch (200)' : 'a new batch (202)'}; one ack`, async () => {
      const h = rig.h;
      const id = `kz-h${point.replace(/[^a-z]/g, '')}`.slice(0, 30);
      const partner = await rig.partner(id);
      const token = (await h.withLedger((l) => issueToken(l, id, 'test'))).token;
      const file = await rig.seal(partner, JSON.stringify(sampleBatch(4, new Date())), `${point}.json.pgp`);
      const doomed: PgwProcess = await h.start('gateway', { PGW_FAULT: point });
      const put = (port: number) => curl(h.tlsCertFile, ['-H', `Authorization: Bearer ${token}`, '-T', file, `https://127.0.0.1:${port}/v1/batches/${point}.json.pgp`]);

      const crashed = await put(doomed.httpsPort!);
      expect(crashed.httpCode, 'no success reply from the crashed gateway').to.not.equal(202);
      expect(crashed.code, 'curl saw the connection die').to.not.equal(0);
      await waitExit(doomed, 30_000, `gateway with PGW_FAULT=${point}`);
      const rows = await h.withLedger((l) => l.batches.list({ partnerId: id }));
      expect(rows.length, 'ledger rows right after the crash').to.equal(durable ? 1 : 0);

      const healthy = await h.start('gateway');
      const retry = await put(healthy.httpsPort!);
      expect(retry.httpCode).to.equal(durable ? 200 : 202);
      const body = JSON.parse(retry.stdout);
      if (durable) expect(body).to.include({ batchId: rows[0]!.id, retried: true });
      await waitAllDone(h, 1, 60_000, [id]);
      await assertExactlyOneAckPerBatch(h, { partners: [partner], count: 1 });
      healthy.child.kill('SIGTERM');
      await waitExit(healthy, 30_000, 'healthy gateway');
    });
  }

  it('after a sweep no temp file is left', async () => {
    await forceSweep(rig.h);
    expect(await fsp.readdir(rig.h.dataDir.tmpDir)).to.deep.equal([]);
  });
});
