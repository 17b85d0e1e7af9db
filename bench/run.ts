/**
 * `npm run bench`: starts everything it needs (Redis if none answers, a private sshd, a
 * bare ssh2 server, `pgw` processes), runs the five sections of issue #8 and writes
 * bench/RESULTS.md. Not part of `npm test`. Everything it started or created — processes,
 * temp dirs, Redis keys under its unique prefixes — is removed at the end, also on failure
 * or Ctrl-C. See bench/README.md.
 */
import { promises as fsp, existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { makeContext, type BenchContext } from './lib/context.js';
import { describeMachine } from './lib/machine.js';
import { installSignalCleanup, mustRun, onCleanup, runCleanups, runCmd } from './lib/procs.js';
import { metMark, table, type SectionResult } from './lib/report.js';
import { ROOT } from './lib/gateway-env.js';
import { SSHD } from './lib/openssh-server.js';
import { runSftpUpload } from './suites/sftp-upload.js';
import { runDecrypt } from './suites/decrypt.js';
import { runE2eLatency } from './suites/e2e-latency.js';
import { runMemory } from './suites/memory.js';
import { runValidation } from './suites/validation.js';
import { runSessions } from './suites/sessions.js';

const started = Date.now();
const elapsed = () => `${((Date.now() - started) / 1000).toFixed(0)}s`;
const log = (msg: string) => process.stderr.write(`[bench ${elapsed()}] ${msg}\n`);

const SECTIONS: { key: string; title: string; run: (ctx: BenchContext) => Promise<SectionResult> }[] = [
  { key: 'sftp', title: '1. SFTP upload throughput', run: runSftpUpload },
  { key: 'decrypt', title: '2. Decrypt + verify throughput', run: runDecrypt },
  { key: 'e2e', title: '3. End-to-end latency, small batches', run: runE2eLatency },
  { key: 'memory', title: '4. Memory with a 1 GiB batch', run: runMemory },
  { key: 'validate', title: '5. Validation throughput', run: runValidation },
  { key: 'sessions', title: '6. Many sessions', run: runSessions },
];

/** Redis on 127.0.0.1:6379 (queues only); start a throw-away one when none answers. */
async function ensureRedis(): Promise<void> {
  if ((await runCmd('redis-cli', ['-h', '127.0.0.1', '-p', '6379', 'ping'])).stdout.toString().trim() === 'PONG') return;
  log('starting redis-server on 127.0.0.1:6379 (stopped again at the end)');
  await mustRun('redis-server', ['--daemonize', 'yes', '--bind', '127.0.0.1', '--port', '6379', '--save', '', '--appendonly', 'no']);
  onCleanup('redis-server started by the benchmark', async () => {
    await runCmd('redis-cli', ['-h', '127.0.0.1', '-p', '6379', 'shutdown', 'nosave']);
  });
  for (let i = 0; i < 50; i++) {
    if ((await runCmd('redis-cli', ['-h', '127.0.0.1', '-p', '6379', 'ping'])).stdout.toString().trim() === 'PONG') return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error('redis-server did not start');
}

function checkTools(only: string[] | undefined): string[] {
  const missing: string[] = [];
  // Only the SFTP and sessions sections start an OpenSSH server.
  if ((!only || only.includes('sftp') || only.includes('sessions')) && !existsSync(SSHD)) missing.push(`${SSHD} (apt-get install -y openssh-server)`);
  for (const [bin, pkg] of [['sftp', 'openssh-client'], ['ssh-keygen', 'openssh-client'], ['gpg', 'gnupg'], ['redis-server', 'redis-server'], ['redis-cli', 'redis-tools']]) {
    if (!process.env.PATH?.split(':').some((d) => existsSync(path.join(d, bin!)))) missing.push(`${bin} (apt-get install -y ${pkg})`);
  }
  return missing;
}

function render(machine: string[][], ctx: BenchContext, results: SectionResult[], totalSeconds: number): string {
  const targets = results.flatMap((r) => r.targets);
  const out = [
    '# Benchmark results',
    '',
    `Written by \`npm run bench\` on ${new Date().toISOString().replace(/\.\d+Z$/, 'Z')} in ${Math.round(totalSeconds / 60)} min${ctx.quick ? ' — **BENCH_QUICK smoke run: sizes shrunk, numbers meaningless**' : ''}. `
    + 'What each figure means and how it is measured: [README.md](README.md). References were measured in the same run, interleaved with ours; '
    + `medians with (min–max) over ${ctx.runs} runs unless a row says otherwise (the 512 MiB decrypt cases: ${ctx.bigRuns} runs; the 1 GiB memory case: 1 run — each takes minutes on this machine).`,
    '',
    '## Machine',
    '',
    ...table(['', ''], machine),
    '',
    '## Targets',
    '',
    ...table(['figure', 'measured', 'target', 'verdict'], targets.map((t) => [t.what, t.value, t.target, metMark(t.met)])),
    '',
  ];
  for (const r of results) {
    out.push(`## ${r.title}`, '');
    if (r.error) out.push(`**This section failed:** \`${r.error.split('\n')[0]}\``, '');
    out.push(...r.lines, '');
    if (r.seconds !== undefined) out.push(`<sub>section time ${Math.round(r.seconds)} s; 1-min load average ${r.load ?? '?'}</sub>`, '');
  }
  return `${out.join('\n').replace(/\n{3,}/g, '\n\n').trimEnd()}\n`;
}

async function main(): Promise<number> {
  installSignalCleanup(log);
  const only = process.env.BENCH_ONLY?.split(',').map((s) => s.trim()).filter(Boolean);
  const missing = checkTools(only);
  if (missing.length) {
    log(`missing tools: ${missing.join(', ')}`);
    return 2;
  }
  const root = await fsp.mkdtemp(path.join(os.tmpdir(), 'pgw-bench-'));
  onCleanup('bench temp dir', () => fsp.rm(root, { recursive: true, force: true }));
  await ensureRedis();
  // `pgw` processes run what an installation runs: the compiled build (bin/launch.js).
  // BENCH_SKIP_BUILD=1 leaves dist/ alone (a shared working tree): bin/pgw.js then runs
  // the sources through tsx whenever dist/ is stale.
  if (process.env.BENCH_SKIP_BUILD === '1') log('not building dist/ (BENCH_SKIP_BUILD=1)');
  else {
    log('building dist/ (npm run build)');
    await mustRun(process.execPath, [path.join(ROOT, 'scripts', 'build.mjs')], { cwd: ROOT, timeoutMs: 300_000 });
  }
  const ctx = makeContext(root, log);
  const machine = await describeMachine();
  const results: SectionResult[] = [];
  for (const s of SECTIONS) {
    if (only && !only.includes(s.key)) continue;
    log(`${s.title}: start`);
    const t0 = Date.now();
    const load0 = os.loadavg()[0]!.toFixed(1);
    let r: SectionResult;
    try {
      r = await s.run(ctx);
    } catch (err) {
      const e = err as Error;
      log(`${s.title}: FAILED: ${e.stack ?? e.message}`);
      r = { title: s.title, lines: [], targets: [], error: e.message };
    }
    r.seconds = (Date.now() - t0) / 1000;
    r.load = `${load0} at start, ${os.loadavg()[0]!.toFixed(1)} at end`;
    results.push(r);
    log(`${s.title}: done`);
  }
  const outFile = process.env.BENCH_OUT ?? (ctx.quick ? path.join(ROOT, 'bench', 'tmp', 'RESULTS.quick.md') : path.join(ROOT, 'bench', 'RESULTS.md'));
  await fsp.mkdir(path.dirname(outFile), { recursive: true });
  await fsp.writeFile(outFile, render(machine, ctx, results, (Date.now() - started) / 1000));
  log(`wrote ${path.relative(process.cwd(), outFile)}`);
  return results.some((r) => r.error) ? 1 : 0;
}

let code = 1;
try {
  code = await main();
} catch (err) {
  log(`failed: ${(err as Error).stack ?? String(err)}`);
} finally {
  await runCleanups(log);
  log(`finished in ${elapsed()}`);
}
process.exit(code);
