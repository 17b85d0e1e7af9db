/**
 * Child process: run one pipeline stage on one batch with the product's own code, the
 * way a worker does, and print `{"ms":…,"cpuMs":…,"stage":…,"errorCode":…,"hwmKiB":…}` (cpuMs: user +
 * system time of the stage call, all threads).
 *
 *   PGW_* env of the installation  node --import tsx bench/lib/stage-runner.ts <decrypt|validate> <batchId>
 *
 * The StageContext is built exactly as gateway/main.ts builds it, except that `enqueue`
 * only records the call (no Redis round trip inside the timing) and logs are discarded.
 * Only the stage call is timed; process start, key unlock and ledger open are not.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { loadConfig } from '../../gateway/core/config.js';
import { silentLogger } from '../../gateway/core/logger.js';
import { DataDir } from '../../gateway/core/data-dir.js';
import { Ledger } from '../../gateway/core/ledger/index.js';
import { DataKeys, loadMasterKey } from '../../gateway/core/sealed-blob.js';
import { GatewayKeyring } from '../../keys/gateway-keyring.js';
import type { StageContext } from '../../workers/stage-context.js';
import { runDecryptStage } from '../../workers/decrypt-stage.js';
import { runValidateStage } from '../../workers/validate-stage.js';

/** Peak resident set size of this process so far (KiB), from /proc. */
export function vmHwmKiB(pid: number | 'self' = 'self'): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : NaN;
}

/**
 * `BENCH_STAGE_PROF=<file>`: a V8 CPU profile of the calls made through `timed` (the last
 * one's is saved), so a profile shows the stage and not process start or set-up.
 */
export async function stageProfiler(file: string | undefined): Promise<{ timed(fn: () => Promise<unknown>): Promise<{ ms: number; cpuMs: number }>; save(): void }> {
  const session = file ? new Session() : null;
  let last: unknown = null;
  if (session) {
    session.connect();
    await session.post('Profiler.enable');
    await session.post('Profiler.setSamplingInterval', { interval: 200 });
  }
  return {
    /**
     * Runs `fn` (profiled when a file was given) and returns its wall time and CPU time in ms
     * (user + system of the whole process: every thread, libuv's pool too).
     */
    async timed(fn) {
      if (session) await session.post('Profiler.start');
      const cpu0 = process.cpuUsage();
      const t0 = performance.now();
      await fn();
      const ms = performance.now() - t0;
      const cpu = process.cpuUsage(cpu0);
      if (session) last = (await session.post('Profiler.stop')).profile;
      return { ms, cpuMs: (cpu.user + cpu.system) / 1000 };
    },
    save() {
      if (!session) return;
      if (last) writeFileSync(file!, JSON.stringify(last));
      session.disconnect();
    },
  };
}

export async function buildStageContext(env: NodeJS.ProcessEnv): Promise<{ ctx: StageContext; enqueued: string[]; close(): Promise<void> }> {
  const config = loadConfig({ env });
  const ledger = await Ledger.open(config.databaseUrl, silentLogger);
  const dataDir = new DataDir(config.dataDir);
  const keyring = await GatewayKeyring.load(ledger, config.keyPassphrase!);
  const dataKeys = new DataKeys(await loadMasterKey(config.dataKey, config.keyPassphrase!, dataDir.keysDir));
  const enqueued: string[] = [];
  const ctx: StageContext = {
    config, ledger, dataDir, dataKeys, keyring, log: silentLogger, fault: () => {},
    enqueuer: { enqueue: async (stage, batchId) => { enqueued.push(`${stage}:${batchId}`); } },
  };
  return { ctx, enqueued, close: () => ledger.close() };
}

if (process.argv[1] && import.meta.filename === process.argv[1]) {
  const [stage, batchId] = process.argv.slice(2);
  if ((stage !== 'decrypt' && stage !== 'validate') || !batchId) {
    console.error('usage: stage-runner <decrypt|validate> <batchId>');
    process.exit(2);
  }
  const { ctx, close } = await buildStageContext(process.env);
  const prof = await stageProfiler(process.env.BENCH_STAGE_PROF);
  const { ms, cpuMs } = await prof.timed(() => (stage === 'decrypt' ? runDecryptStage(ctx, batchId) : runValidateStage(ctx, batchId)));
  prof.save();
  const b = await ctx.ledger.batches.get(batchId);
  console.log(JSON.stringify({
    ms, cpuMs, stage: b?.stage, errorCode: b?.error_code ?? null, outcome: b?.outcome ?? null,
    records: b?.records_total ?? null, hwmKiB: vmHwmKiB(),
  }));
  await close();
}
