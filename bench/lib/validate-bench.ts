/**
 * Child process for §5: records/s of the validate stage and of its parts, `runs` times each,
 * interleaved, after one warm-up round (a worker is a long-running process: JIT-warm).
 *
 *   PGW_* env of the installation  node --import tsx bench/lib/validate-bench.ts <partnerId> <records> <runs>
 *
 * Prints one JSON line: arrays of records/s for
 * - `stage`: `runValidateStage` on a promoted batch (read + decrypt the sealed payload,
 *   decode, parse, validate, seal the accepted records, ledger update);
 * - `validateBatch`: the pure function on the plaintext buffer (decode, depth/duplicate-key
 *   scan, JSON.parse, key count, per-record Ajv + date rules);
 * - `parse`: `JSON.parse` of the same text alone;
 * - `ajv`: the compiled record validator alone over already-parsed records (the ceiling);
 * - `stageCpu`: records per CPU-second of each stage call (user + system, all threads);
 * - `reference`: what a developer would write instead — `JSON.parse` of the plaintext, then
 *   the compiled Ajv record validator (the gateway's own, custom formats included) on each
 *   record — and `referenceCpu`, its records per CPU-second (same measure as `stageCpu`).
 */
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { writeSealed } from '../../gateway/core/sealed-blob.js';
import { newBatchId } from '../../gateway/ingest/ingest-service.js';
import { getSchemaValidators, CLIENT_REGISTRATION_V1 } from '../../schemas/compiled-schemas.js';
import { validateBatch } from '../../schemas/batch-validator.js';
import { sampleRecord } from '../../schemas/testing/sample-records.js';
import { runValidateStage } from '../../workers/validate-stage.js';
import { buildStageContext, stageProfiler, vmHwmKiB } from './stage-runner.js';

const [partnerId, nStr, runsStr] = process.argv.slice(2);
const n = Number(nStr);
const runs = Number(runsStr);
const { ctx, close } = await buildStageContext(process.env);
const now = new Date();
const records = Array.from({ length: n }, (_, i) => sampleRecord(i, now));
const text = JSON.stringify({ schema: CLIENT_REGISTRATION_V1, reference: 'bench', createdAt: now.toISOString(), records });
const plaintext = Buffer.from(text);
const v = getSchemaValidators(CLIENT_REGISTRATION_V1)!;
// The reference reads the batch as a plain file (the stage reads its sealed payload).
const plainFile = path.join(process.env.PGW_DATA_DIR!, 'bench-plaintext.json');
writeFileSync(plainFile, plaintext);

async function promoted(): Promise<string> {
  const id = newBatchId();
  const { key, wrapped } = ctx.dataKeys.create();
  await writeSealed(ctx.dataDir.payloadFile(id), key, plaintext);
  await ctx.ledger.batches.insertReceived({
    id, partnerId: partnerId!, channel: 'sftp', lane: 'live', fileName: 'bench.json.pgp',
    sha256: randomBytes(32).toString('hex'), size: plaintext.length, receivedAt: new Date(), dataKey: wrapped,
  });
  await ctx.ledger.batches.advance(id, 'decrypt', 'validate', {}, { stage: 'decrypt', outcome: 'ok' });
  return id;
}

// BENCH_STAGE_PROF=<file>: a V8 CPU profile of the stage calls only (the last run's).
const prof = await stageProfiler(process.env.BENCH_STAGE_PROF);

const kinds = {
  async ajv() {
    const t0 = performance.now();
    let ok = 0;
    for (const r of records) if (v.record(r)) ok++;
    if (ok !== n) throw new Error(`ajv: ${n - ok} records invalid`);
    return performance.now() - t0;
  },
  async parse() {
    const t0 = performance.now();
    const x = JSON.parse(text) as { records: unknown[] };
    if (x.records.length !== n) throw new Error('parse');
    return performance.now() - t0;
  },
  async validateBatch() {
    const t0 = performance.now();
    const r = validateBatch(Buffer.from(plaintext), { fileName: 'bench.json', now, allowBsnPlaceholder: false, maxRecords: ctx.config.limits.records, maxJsonDepth: ctx.config.limits.jsonDepth });
    if (r.accepted !== n) throw new Error(`validateBatch: accepted ${r.accepted} of ${n}`);
    return performance.now() - t0;
  },
  async reference() {
    const t0 = performance.now();
    const cpu0 = process.cpuUsage();
    const x = JSON.parse(readFileSync(plainFile, 'utf8')) as { records: unknown[] };
    let ok = 0;
    for (const r of x.records) if (v.record(r)) ok++;
    const cpu = process.cpuUsage(cpu0);
    if (ok !== n) throw new Error(`reference: ${n - ok} records invalid`);
    referenceCpu.push(n / ((cpu.user + cpu.system) / 1e6));
    return performance.now() - t0;
  },
  async stage() {
    const id = await promoted();
    const { ms, cpuMs } = await prof.timed(() => runValidateStage(ctx, id));
    stageCpu.push(n / (cpuMs / 1000));
    const b = await ctx.ledger.batches.get(id);
    if (b?.records_accepted !== n) throw new Error(`stage: ${b?.stage} ${b?.error_code} accepted ${b?.records_accepted}`);
    for (const f of [ctx.dataDir.payloadFile(id), ctx.dataDir.acceptedFile(id)]) await import('node:fs/promises').then((m) => m.rm(f, { force: true }));
    return ms;
  },
};
type Kind = keyof typeof kinds;
/** Records per CPU-second of each stage call (user + system, every thread of the process). */
const stageCpu: number[] = [];
/** Records per CPU-second of each reference run (JSON.parse + Ajv per record). */
const referenceCpu: number[] = [];
const order = Object.keys(kinds) as Kind[];
const out: Record<Kind, number[]> = { ajv: [], parse: [], validateBatch: [], reference: [], stage: [] };
for (const k of order) await kinds[k](); // warm-up
stageCpu.length = 0;
referenceCpu.length = 0;
for (let run = 0; run < runs; run++) {
  for (let j = 0; j < order.length; j++) {
    const k = order[(run + j) % order.length]!;
    out[k].push(n / ((await kinds[k]()) / 1000));
  }
}
prof.save();
console.log(JSON.stringify({ ...out, stageCpu, referenceCpu, bytes: plaintext.length, hwmKiB: vmHwmKiB() }));
await close();
