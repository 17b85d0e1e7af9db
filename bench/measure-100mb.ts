/**
 * One real 100 MB batch through the whole product: gpg-sealed JSON uploaded with OpenSSH
 * `sftp`, timed from the start of the upload to the ack in the outbox. A single-run
 * measurement for notes; the benchmark suite is the place for ratios.
 */
import { promises as fsp } from 'node:fs';
import { GatewayHarness } from '../test/helpers/gateway-harness.js';
import { sampleRecord } from '../schemas/testing/sample-records.js';

const target = Number(process.argv[2] ?? 100) * 1024 * 1024;
const h = await GatewayHarness.create();
try {
  await h.start('all');
  const p = await h.addPartner('kz-big');
  const now = new Date();
  const parts: string[] = [];
  let size = 0;
  for (let i = 0; size < target; i++) {
    const s = JSON.stringify(sampleRecord(i, now));
    parts.push(s);
    size += s.length + 1;
  }
  const json = `{"schema":"client-registration/v1","reference":"big","records":[${parts.join(',')}]}`;
  let t = Date.now();
  const file = await h.seal(p, json, 'big.json.pgp');
  const sealMs = Date.now() - t;
  const bytes = (await fsp.stat(file)).size;
  t = Date.now();
  const r = await h.sftp(p, [`put ${file} /inbox/big.json.pgp`]);
  const uploadMs = Date.now() - t;
  if (r.code !== 0) throw new Error(r.stderr);
  await h.waitForAck('kz-big', 'big.json.pgp.ack.pgp', 'live', 600_000);
  const totalMs = Date.now() - t;
  const { ack } = await h.fetchAck(p, '/outbox/big.json.pgp.ack.pgp');
  const ev = await h.withLedger(async (l) => l.batches.events((await l.batches.list({ partnerId: 'kz-big' }))[0]!.id));
  console.log(JSON.stringify({
    plaintextMiB: +(json.length / 1048576).toFixed(1), records: parts.length, uploadedMiB: +(bytes / 1048576).toFixed(1),
    gpgSealMs: sealMs, sftpUploadMs: uploadMs, uploadMBps: +((bytes / 1e6) / (uploadMs / 1000)).toFixed(1),
    uploadToAckMs: totalMs, status: ack.status, accepted: (ack.records as { accepted: number }).accepted,
    stages: ev.map((e) => `${e.stage}:${e.outcome}@${e.at.slice(11, 23)}`),
  }, null, 1));
} finally {
  await h.cleanup();
}
