/**
 * Child process: run one pipeline stage on one batch with the product's own code, the
 * way a worker does, and print `{"ms":…,"stage":…,"errorCode":…,"hwmKiB":…}`.
 *
 *   PGW_* env of the installation  node --import tsx bench/lib/stage-runner.ts <decrypt|validate> <batchId>
 *
 * The stage and its StageContext come from the runtime a worker runs — dist/ when it was
 * built from these sources, else the sources (tsx) — and the context is built exactly as
 * gateway/main.ts builds it, except that `enqueue`
 * only records the call (no Redis round trip inside the timing) and logs are discarded.
 * Only the stage call is timed; process start, key unlock and ledger open are not.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { compiledEntry } from '../../bin/launch.js';
import type { StageContext } from '../../workers/stage-context.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
/** The runtime a worker runs: dist/ when it was built from these sources (bin/launch.js), else the sources. */
const COMPILED = compiledEntry(ROOT) !== null;

async function runtime<T>(module: string): Promise<T> {
  return import(pathToFileURL(path.join(ROOT, COMPILED ? 'dist' : '', `${module}${COMPILED ? '.js' : '.ts'}`)).href) as Promise<T>;
}

/** The stage functions and what a StageContext is built from, loaded from that runtime. */
export async function loadRuntime() {
  const [config, logger, dataDir, ledger, sealed, keyring, decrypt, validate, seipd] = await Promise.all([
    runtime<typeof import('../../gateway/core/config.js')>('gateway/core/config'),
    runtime<typeof import('../../gateway/core/logger.js')>('gateway/core/logger'),
    runtime<typeof import('../../gateway/core/data-dir.js')>('gateway/core/data-dir'),
    runtime<typeof import('../../gateway/core/ledger/index.js')>('gateway/core/ledger/index'),
    runtime<typeof import('../../gateway/core/sealed-blob.js')>('gateway/core/sealed-blob'),
    runtime<typeof import('../../keys/gateway-keyring.js')>('keys/gateway-keyring'),
    runtime<typeof import('../../workers/decrypt-stage.js')>('workers/decrypt-stage'),
    runtime<typeof import('../../workers/validate-stage.js')>('workers/validate-stage'),
    runtime<typeof import('../../workers/seipd-v1.js')>('workers/seipd-v1'),
  ]);
  return { ...config, ...logger, ...dataDir, ...ledger, ...sealed, ...keyring, ...decrypt, ...validate, ...seipd, compiled: COMPILED };
}
const rt = await loadRuntime();

/** Peak resident set size of this process so far (KiB), from /proc. */
export function vmHwmKiB(pid: number | 'self' = 'self'): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : NaN;
}

/**
 * `BENCH_STAGE_PROF=<file>`: a V8 CPU profile of the calls made through `timed` (the last
 * one's is saved), so a profile shows the stage and not process start or set-up.
 */
export async function stageProfiler(file: string | undefined): Promise<{ timed(fn: () => Promise<unknown>): Promise<number>; save(): void }> {
  const session = file ? new Session() : null;
  let last: unknown = null;
  if (session) {
    session.connect();
    await session.post('Profiler.enable');
    await session.post('Profiler.setSamplingInterval', { interval: 200 });
  }
  return {
    /** Runs `fn` and returns its wall time in ms (profiled when a file was given). */
    async timed(fn) {
      if (session) await session.post('Profiler.start');
      const t0 = performance.now();
      await fn();
      const ms = performance.now() - t0;
      if (session) last = (await session.post('Profiler.stop')).profile;
      return ms;
    },
    save() {
      if (!session) return;
      if (last) writeFileSync(file!, JSON.stringify(last));
      session.disconnect();
    },
  };
}

export async function buildStageContext(env: NodeJS.ProcessEnv): Promise<{ ctx: StageContext; enqueued: string[]; close(): Promise<void> }> {
  const config = rt.loadConfig({ env });
  const ledger = await rt.Ledger.open(config.databaseUrl, rt.silentLogger);
  const dataDir = new rt.DataDir(config.dataDir);
  const keyring = await rt.GatewayKeyring.load(ledger, config.keyPassphrase!);
  const dataKeys = new rt.DataKeys(await rt.loadMasterKey(config.dataKey, config.keyPassphrase!, dataDir.keysDir));
  const enqueued: string[] = [];
  const ctx: StageContext = {
    config, ledger, dataDir, dataKeys, keyring, handoff: null, log: rt.silentLogger, fault: () => {},
    enqueuer: { enqueue: async (stage, batchId) => { enqueued.push(`${stage}:${batchId}`); } },
  };
  await rt.seipdThreads.warm(); // as a worker process does when its WorkerPool starts
  return { ctx, enqueued, close: async () => { await rt.seipdThreads.close(); await ledger.close(); } };
}

if (process.argv[1] && import.meta.filename === process.argv[1]) {
  const [stage, batchId] = process.argv.slice(2);
  if ((stage !== 'decrypt' && stage !== 'validate') || !batchId) {
    console.error('usage: stage-runner <decrypt|validate> <batchId>');
    process.exit(2);
  }
  const { ctx, close } = await buildStageContext(process.env);
  const prof = await stageProfiler(process.env.BENCH_STAGE_PROF);
  const ms = await prof.timed(() => (stage === 'decrypt' ? rt.runDecryptStage(ctx, batchId) : rt.runValidateStage(ctx, batchId)));
  prof.save();
  const b = await ctx.ledger.batches.get(batchId);
  console.log(JSON.stringify({ ms, stage: b?.stage, errorCode: b?.error_code ?? null, outcome: b?.outcome ?? null, records: b?.records_total ?? null, hwmKiB: vmHwmKiB() }));
  await close();
}
