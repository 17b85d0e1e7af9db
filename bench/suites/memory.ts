/**
 * §4 Peak memory while one big batch goes through: `pgw start --role gateway` and
 * `pgw start --role worker` as separate processes, the batch uploaded with OpenSSH `sftp`,
 * VmHWM of both read from /proc when the ack is in the outbox, and VmRSS sampled every
 * 200 ms to see which stage the peak belongs to (stage times from the ledger's events).
 */
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { constants } from 'node:buffer';
import { CIPHER, type BenchContext } from '../lib/context.js';
import { GatewayEnv } from '../lib/gateway-env.js';
import { writeJsonBatch, fileSize } from '../lib/files.js';
import { SftpCli } from '../lib/sftp-cli.js';
import { OutboxWatch } from '../lib/outbox-watch.js';
import { readRss, RssSampler } from '../lib/rss.js';
import { fmt, metMark, table, type SectionResult, type TargetCheck } from '../lib/report.js';
import { MiB, mbps } from '../lib/stats.js';

const LIMIT_MIB = 256;
/** V8's maximum string length on 64-bit Node 20 (buffer.constants.MAX_STRING_LENGTH). */
const V8_MAX_STRING = constants.MAX_STRING_LENGTH;

export async function runMemory(ctx: BenchContext): Promise<SectionResult> {
  const env = await GatewayEnv.create(ctx.root, 'mem-gw');
  const partner = await env.addPartner('bench-mem');
  const dir = path.join(env.dir, 'batch');
  await fsp.mkdir(dir);
  const plain = path.join(dir, 'big.json');
  const label = `${Math.round(ctx.sizes.memoryBatchBytes / MiB) >= 1024 ? `${(ctx.sizes.memoryBatchBytes / 2 ** 30).toFixed(0)} GiB` : `${Math.round(ctx.sizes.memoryBatchBytes / MiB)} MiB`}`;
  ctx.log(`memory: making a ${label} JSON batch, signed and encrypted with gpg`);
  const { records, bytes: plainBytes } = await writeJsonBatch(plain, { minBytes: ctx.sizes.memoryBatchBytes });
  const sealed = path.join(dir, 'big.json.pgp');
  await env.seal(partner, plain, sealed);
  await fsp.rm(plain);
  const sealedBytes = await fileSize(sealed);

  // The whole batch goes through (validated, accepted records sealed), not only up to the
  // default PGW_MAX_RECORDS (1,000,000), where the validator stops reading.
  const limits = { PGW_MAX_RECORDS: String(records) };
  const gw = await env.start('gateway', limits);
  const wk = await env.start('worker', limits);
  const idle = { gateway: (await readRss(gw.pid))!, worker: (await readRss(wk.pid))! };
  const sampler = { gateway: new RssSampler(gw.pid), worker: new RssSampler(wk.pid) };
  const watch = new OutboxWatch(env.dataDir.outboxFor(partner.id, 'live'));
  let uploadMs = 0;
  const tUpload = Date.now();
  let final: { gateway: number; worker: number };
  let tAck = 0;
  try {
    ctx.log('memory: uploading with OpenSSH sftp');
    const cli = await SftpCli.connect({ port: env.sftpPort, user: partner.id, key: partner.sshKey }, CIPHER);
    uploadMs = await cli.put(sealed, '/inbox/big.json.pgp');
    await cli.close();
    ctx.log('memory: waiting for the ack');
    await watch.waitFor('big.json.pgp.ack.pgp', 20 * 60_000);
    tAck = Date.now();
    final = { gateway: (await readRss(gw.pid))!.hwmKiB, worker: (await readRss(wk.pid))!.hwmKiB };
  } finally {
    sampler.gateway.stop();
    sampler.worker.stop();
    watch.close();
  }
  const batch = await env.withLedger(async (l) => {
    const b = (await l.batches.list({ partnerId: partner.id }))[0]!;
    return { b, ev: await l.batches.events(b.id) };
  });
  await env.close();

  const at = (stage: string) => {
    const e = batch.ev.find((x) => x.stage === stage);
    return e ? Date.parse(e.at) : NaN;
  };
  const tReceived = at('received');
  const tDecrypt = at('decrypt');
  const tValidate = at('validate');
  const phases: [string, number, number][] = [
    ['upload (until the CLOSE status)', tUpload, tReceived],
    ['decrypt', tReceived, Number.isFinite(tDecrypt) ? tDecrypt : tAck],
    ['validate', tDecrypt, Number.isFinite(tValidate) ? tValidate : tAck],
    ['ack', Number.isFinite(tValidate) ? tValidate : tDecrypt, tAck],
  ];
  const mib = (kib: number) => (Number.isFinite(kib) ? fmt(kib / 1024, 0) : '–');
  const targets: TargetCheck[] = [
    { what: `peak RSS gateway, ${label} batch`, value: `${mib(final!.gateway)} MiB`, target: `< ${LIMIT_MIB} MiB`, met: final!.gateway / 1024 < LIMIT_MIB },
    { what: `peak RSS worker, ${label} batch`, value: `${mib(final!.worker)} MiB`, target: `< ${LIMIT_MIB} MiB`, met: final!.worker / 1024 < LIMIT_MIB },
  ];
  const secs = (a: number, b: number) => (Number.isFinite(a) && Number.isFinite(b) ? `${((b - a) / 1000).toFixed(1)} s` : '–');
  const lines = [
    `One ${label} batch: ${records.toLocaleString('en-US')} sample records as JSON (${fmt(plainBytes / MiB, 0)} MiB), signed and encrypted by gpg `
    + `(${fmt(sealedBytes / MiB, 0)} MiB uploaded: gpg does not compress, because the gateway key's preferences list Uncompressed first), uploaded with OpenSSH \`sftp\` `
    + `(${fmt(mbps(sealedBytes, uploadMs), 0)} MB/s). PGW_MAX_RECORDS is raised to the batch's record count (default 1,000,000, at which the validator `
    + 'would stop reading), so the whole batch is decrypted, validated and its accepted records sealed. Peak = VmHWM from /proc at ack time; per-stage = largest VmRSS sampled every 200 ms. '
    + '1 run (a run takes minutes here).',
    '',
    ...table(['process', 'idle RSS MiB', 'peak RSS (VmHWM) MiB', `target < ${LIMIT_MIB} MiB`], [
      ['gateway (`--role gateway`)', mib(idle.gateway.rssKiB), mib(final!.gateway), metMark(targets[0]!.met)],
      ['worker (`--role worker`)', mib(idle.worker.rssKiB), mib(final!.worker), metMark(targets[1]!.met)],
    ]),
    '',
    `Batch outcome: ${batch.b.outcome ?? batch.b.stage}${batch.b.error_code ? ` (\`${batch.b.error_code}\`)` : ''}.`
    + (batch.b.error_code === 'payload.encoding' && plainBytes > V8_MAX_STRING
      ? ` The plaintext is valid UTF-8: it is longer than V8's maximum string length (${V8_MAX_STRING.toLocaleString('en-US')} characters), `
        + 'so decoding it into one string throws a RangeError, which the validator reports as an encoding error.'
      : ''),
    '',
    ...table(['phase', 'duration', 'gateway max RSS MiB', 'worker max RSS MiB'], phases.map(([name, a, b]) => [
      name, secs(a, b), mib(sampler.gateway.peakBetween(a, b)), mib(sampler.worker.peakBetween(a, b)),
    ])),
  ];
  return { title: '4. Memory with a 1 GiB batch', lines, targets };
}
