/**
 * CPU time per small batch in each pipeline stage, in one process (no Redis, no SFTP): a
 * tool to see where the ~50 ms of CPU per 24 KiB batch goes.
 *
 *   node --import tsx bench/pipeline-cpu.ts [batches=60] [records=100]
 *
 * Makes a throw-away installation (bench/lib/gateway-env.ts) with one gpg partner, spools
 * `batches` gpg-signed and encrypted batches, then runs decrypt → validate → ack on each in
 * turn with the StageContext a worker builds (enqueue only recorded, logs discarded) and
 * prints process.cpuUsage() per stage and batch (median after the first 10), and every
 * SQLite statement the stages ran, per batch, with its time. `BENCH_STAGE_PROF=<file>`
 * writes a V8 CPU profile of the measured batches.
 */
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { GatewayEnv } from './lib/gateway-env.js';
import { writeJsonBatch } from './lib/files.js';
import { onCleanup, runCleanups } from './lib/procs.js';
import { buildStageContext, stageProfiler } from './lib/stage-runner.js';
import { runDecryptStage } from '../workers/decrypt-stage.js';
import { runValidateStage } from '../workers/validate-stage.js';
import { runAckStage } from '../workers/ack-stage.js';

const n = Number(process.argv[2] ?? 60);
const records = Number(process.argv[3] ?? 100);
const WARM = Math.min(10, Math.floor(n / 2));

// Every statement the ledger runs, timed (better-sqlite3 is synchronous).
const sqlStats = new Map<string, { count: number; ms: number; cpuMs: number }>();
let counting = false;
const proto = Database.prototype as unknown as { prepare(sql: string): Record<string, (...a: unknown[]) => unknown> };
const prepare = proto.prepare;
proto.prepare = function (this: unknown, sql: string) {
  const t0 = performance.now();
  const st = prepare.call(this, sql);
  const prepMs = performance.now() - t0;
  for (const m of ['run', 'all', 'get', 'iterate'] as const) {
    const orig = st[m]!.bind(st);
    st[m] = (...a: unknown[]) => {
      const t1 = performance.now();
      const c1 = process.cpuUsage();
      try {
        return orig(...a);
      } finally {
        if (counting) {
          const key = sql.replace(/\s+/g, ' ').slice(0, 110);
          const s = sqlStats.get(key) ?? { count: 0, ms: 0, cpuMs: 0 };
          const c = process.cpuUsage(c1);
          s.count += 1;
          s.ms += performance.now() - t1 + prepMs;
          s.cpuMs += (c.user + c.system) / 1000;
          sqlStats.set(key, s);
        }
      }
    };
  }
  return st;
};

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;

try {
  const root = await fsp.mkdtemp(path.join(os.tmpdir(), 'pgw-bench-cpu-'));
  onCleanup('temp dir', () => fsp.rm(root, { recursive: true, force: true }));
  const env = await GatewayEnv.create(root, 'cpu');
  const p = await env.addPartner('bench-cpu-01');
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    const plain = path.join(env.dir, `b${i}.json`);
    const sealed = `${plain}.pgp`;
    await writeJsonBatch(plain, { records, reference: `cpu-${i}` });
    await env.seal(p, plain, sealed);
    ids.push(await env.spool(p.id, sealed, `b${i}.json.pgp`));
  }
  const { ctx, close } = await buildStageContext(env.env);
  const prof = await stageProfiler(process.env.BENCH_STAGE_PROF);
  const cpu: Record<string, number[]> = { decrypt: [], validate: [], ack: [] };
  const runs = { decrypt: runDecryptStage, validate: runValidateStage, ack: runAckStage };
  const measured = async () => {
    for (let i = 0; i < n; i++) {
      counting = i >= WARM;
      for (const [stage, fn] of Object.entries(runs)) {
        const c0 = process.cpuUsage();
        await fn(ctx, ids[i]!);
        const c = process.cpuUsage(c0);
        if (i >= WARM) cpu[stage]!.push((c.user + c.system) / 1000);
      }
      const b = await ctx.ledger.batches.get(ids[i]!);
      if (b?.stage !== 'done' || b.outcome !== 'accepted') throw new Error(`batch ${i}: ${b?.stage} ${b?.outcome} ${b?.error_code}`);
    }
  };
  await prof.timed(measured);
  prof.save();
  const m = n - WARM;
  console.log(`CPU ms per batch (median of ${m}, ${records} records, process.cpuUsage: all threads):`);
  let sum = 0;
  for (const [stage, xs] of Object.entries(cpu)) {
    sum += median(xs);
    console.log(`  ${stage.padEnd(9)} ${median(xs).toFixed(2)}`);
  }
  console.log(`  total     ${sum.toFixed(2)}`);
  const all = [...sqlStats].sort((a, b) => b[1].ms - a[1].ms);
  console.log(`SQLite: ${(all.reduce((a, [, s]) => a + s.count, 0) / m).toFixed(1)} statements, ${(all.reduce((a, [, s]) => a + s.ms, 0) / m).toFixed(2)} ms wall `
    + `(${(all.reduce((a, [, s]) => a + s.cpuMs, 0) / m).toFixed(2)} ms CPU, prepare not included) per batch, blocking the event loop:`);
  for (const [sql, s] of all.slice(0, 40)) console.log(`  ${(s.count / m).toFixed(1).padStart(5)}× ${(s.ms / m).toFixed(3).padStart(7)} ms ${(s.cpuMs / m).toFixed(3).padStart(7)} CPU  ${sql}`);
  await close();
} finally {
  await runCleanups();
}
