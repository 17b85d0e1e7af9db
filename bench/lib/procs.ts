/**
 * Every process the benchmark starts, and every clean-up it owes, in one place.
 *
 * Children are started in their own process group (`detached`), so that stopping one also
 * stops what it started (sftp → ssh, sshd → its per-connection children). Clean-ups run in
 * reverse order of registration, once, on normal exit, on failure and on SIGINT/SIGTERM/
 * SIGHUP. Only processes started here are ever signalled, by their own pid/pgid.
 */
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { NODE_FLAGS } from '../../bin/launch.js';

/**
 * Node flags for every Node child the benchmark starts (`pgw` processes, stage runners, the
 * bare ssh2 server): pgw's own NODE_FLAGS (the heap sizes the product runs with), then
 * `BENCH_CPU_PROF=<dir>` adds `--cpu-prof`, so each leaves a V8 CPU profile there when it
 * exits (summarise with bench/profile-summary.ts, or open in Chrome DevTools), and
 * `BENCH_NODE_FLAGS="…"` its space-separated flags (e.g. `--trace-gc`, `--import x.mjs`;
 * a V8 flag given again overrides NODE_FLAGS).
 */
export function nodeFlags(): string[] {
  const dir = process.env.BENCH_CPU_PROF;
  const extra = (process.env.BENCH_NODE_FLAGS ?? '').split(' ').filter(Boolean);
  return [...NODE_FLAGS, ...(dir ? ['--cpu-prof', `--cpu-prof-dir=${path.resolve(dir)}`] : []), ...extra];
}

export interface Tracked {
  child: ChildProcess;
  /** Resolves when the process has exited (never rejects). */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stop(graceMs?: number): Promise<void>;
}

const live = new Set<Tracked>();
const cleanups: { what: string; fn: () => Promise<void> | void }[] = [];
let cleaning: Promise<void> | null = null;

/** Spawn a child in its own process group and track it until it exits. */
export function spawnTracked(cmd: string, args: readonly string[], opts: SpawnOptions = {}): Tracked {
  const child = spawn(cmd, args, { ...opts, detached: true });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
    child.once('error', () => resolve({ code: -1, signal: null }));
  });
  const t: Tracked = {
    child,
    exited,
    async stop(graceMs = 5000) {
      if (child.exitCode === null && child.signalCode === null && child.pid) {
        signalGroup(child.pid, 'SIGTERM');
        const timer = setTimeout(() => signalGroup(child.pid!, 'SIGKILL'), graceMs);
        await exited;
        clearTimeout(timer);
      }
      // Whatever the leader left behind in its group (e.g. ssh under sftp).
      if (child.pid) signalGroup(child.pid, 'SIGKILL');
    },
  };
  live.add(t);
  void exited.then(() => live.delete(t));
  return t;
}

function signalGroup(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(-pid, sig);
  } catch {
    try {
      process.kill(pid, sig);
    } catch {
      /* already gone */
    }
  }
}

export interface RunResult {
  code: number | null;
  stdout: Buffer;
  stderr: string;
  ms: number;
}

/** Run a command to completion (tracked, so a failure elsewhere still stops it). */
export async function runCmd(cmd: string, args: readonly string[], opts: SpawnOptions & { input?: Buffer | string; timeoutMs?: number } = {}): Promise<RunResult> {
  const t0 = performance.now();
  const { input, timeoutMs, ...spawnOpts } = opts;
  const t = spawnTracked(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], ...spawnOpts });
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  t.child.stdout?.on('data', (d: Buffer) => out.push(d));
  t.child.stderr?.on('data', (d: Buffer) => err.push(d));
  t.child.stdin?.on('error', () => {});
  t.child.stdin?.end(input ?? undefined);
  const timer = timeoutMs ? setTimeout(() => void t.stop(1000), timeoutMs) : null;
  const { code } = await t.exited;
  if (timer) clearTimeout(timer);
  return { code, stdout: Buffer.concat(out), stderr: Buffer.concat(err).toString('utf8'), ms: performance.now() - t0 };
}

/**
 * CPU time (user + system, ms) of this process's waited-for children so far, from
 * /proc/self/stat (clock ticks, 10 ms). The difference around a {@link runCmd} is that
 * command's CPU time when nothing else of ours exits meanwhile (the bench runs one at a time).
 */
export function childrenCpuMs(): number {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' '); // fields from 3 (state) on
  return (Number(f[16 - 3]) + Number(f[17 - 3])) * (1000 / CLOCK_TICKS);
}
/** CPU time (user + system, ms, every thread) of a running process so far, from /proc/<pid>/stat. */
export function processCpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[14 - 3]) + Number(f[15 - 3])) * (1000 / CLOCK_TICKS);
}
/** USER_HZ: 100 on every Linux this runs on (sysconf(_SC_CLK_TCK) is not reachable from Node). */
const CLOCK_TICKS = 100;

/** Like {@link runCmd}, but throws on a non-zero exit. */
export async function mustRun(cmd: string, args: readonly string[], opts: SpawnOptions & { input?: Buffer | string; timeoutMs?: number } = {}): Promise<RunResult> {
  const r = await runCmd(cmd, args, opts);
  if (r.code !== 0) throw new Error(`${cmd} ${args.slice(0, 6).join(' ')} … exited ${r.code}: ${r.stderr.slice(-2000)}`);
  return r;
}

/** Register a clean-up step (run in reverse order by {@link runCleanups}). */
export function onCleanup(what: string, fn: () => Promise<void> | void): void {
  cleanups.push({ what, fn });
}

/** Stop every tracked process, then run the registered clean-ups. Idempotent. */
export function runCleanups(log: (msg: string) => void = () => {}): Promise<void> {
  cleaning ??= (async () => {
    await Promise.all([...live].map((t) => t.stop(3000)));
    for (const c of cleanups.splice(0).reverse()) {
      try {
        await c.fn();
      } catch (err) {
        log(`clean-up "${c.what}" failed: ${(err as Error).message}`);
      }
    }
  })();
  return cleaning;
}

/** On SIGINT/SIGTERM/SIGHUP: clean up, then exit with 128+signal. */
export function installSignalCleanup(log: (msg: string) => void): void {
  const codes: Partial<Record<NodeJS.Signals, number>> = { SIGINT: 130, SIGTERM: 143, SIGHUP: 129 };
  for (const sig of Object.keys(codes) as NodeJS.Signals[]) {
    process.once(sig, () => {
      log(`${sig}: cleaning up`);
      void runCleanups(log).finally(() => process.exit(codes[sig]));
    });
  }
}
