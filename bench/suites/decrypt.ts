/**
 * §2 Decrypt + verify throughput of gpg-made signed+encrypted files: our decrypt stage
 * (`runDecryptStage` on a spooled batch, in a fresh worker-like process: openpgp stream →
 * sealed quarantine → fsync → promote → ledger) vs `gpg --decrypt` of the same file into a
 * file. Files are made the way a partner's gpg makes them by default (sign + encrypt to
 * the gateway key with gpg's defaults), for compressible JSON, incompressible random bytes,
 * and both again with gpg told to compress with zlib.
 */
import { createCipheriv, createHash, randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import type { BenchContext } from '../lib/context.js';
import { GatewayEnv } from '../lib/gateway-env.js';
import { runChildJson } from '../lib/child.js';
import { childrenCpuMs, runCmd } from '../lib/procs.js';
import { inGpgHome } from '../../test/helpers/gpg-home-queue.js';
import { fileSize, writeJsonBatch, writeRandomFile } from '../lib/files.js';
import { cell, metMark, ratioCell, table, type SectionResult, type TargetCheck } from '../lib/report.js';
import { MiB, fmt, mbps, pairedRatios, summarize } from '../lib/stats.js';

interface StageRun {
  ms: number;
  cpuMs: number;
  stage: string;
  errorCode: string | null;
  hwmKiB: number;
}

type Kind = 'JSON' | 'random' | 'JSON, zlib' | 'random, zlib';

/** gpg options per kind: partners' defaults, and one JSON variant forced to compress. */
const SEAL_ARGS: Record<Kind, string[]> = {
  JSON: [], random: [], 'JSON, zlib': ['--compress-algo', 'zlib'], 'random, zlib': ['--compress-algo', 'zlib'],
};

interface Case {
  label: string;
  kind: Kind;
  plainBytes: number;
  sealed: string;
  sealedBytes: number;
  runs: number;
  ours: number[];
  gpg: number[];
  hwm: number[];
  /** CPU time (ms, user + system) of our stage call and of the whole gpg process, per run. */
  oursCpu: number[];
  gpgCpu: number[];
}

export async function runDecrypt(ctx: BenchContext): Promise<SectionResult> {
  const env = await GatewayEnv.create(ctx.root, 'decrypt-gw');
  const partner = await env.addPartner('bench-dec');
  const gwHome = await env.gatewayGpgHome();
  const dir = await fsp.mkdtemp(path.join(ctx.root, 'decrypt-'));

  const cases: Case[] = [];
  for (const [i, size] of ctx.sizes.decrypt.entries()) {
    // random, zlib: incompressible bytes in a zlib packet, the worst case for the inflater's memory
    for (const kind of ['JSON', 'random', 'JSON, zlib', 'random, zlib'] as const) {
      const plain = path.join(dir, `${kind.replace(/\W+/g, '-')}-${size.bytes}.plain`);
      ctx.log(`decrypt: making ${size.label} ${kind} with gpg`);
      if (kind.startsWith('JSON')) await writeJsonBatch(plain, { minBytes: size.bytes });
      else await writeRandomFile(plain, size.bytes);
      const plainBytes = await fileSize(plain);
      const sealed = `${plain}.gpg`;
      await env.seal(partner, plain, sealed, SEAL_ARGS[kind]);
      await fsp.rm(plain);
      const last = i === ctx.sizes.decrypt.length - 1;
      cases.push({
        label: size.label, kind, plainBytes, sealed, sealedBytes: await fileSize(sealed), runs: last ? ctx.bigRuns : ctx.runs, ours: [], gpg: [], hwm: [], oursCpu: [], gpgCpu: [],
      });
    }
  }

  const ours = async (c: Case) => {
    const id = await env.spool(partner.id, c.sealed);
    try {
      const r = await runChildJson<StageRun>('lib/stage-runner.ts', ['decrypt', id], env.env);
      if (r.stage !== 'validate') throw new Error(`decrypt stage did not pass the batch (stage ${r.stage}, ${r.errorCode})`);
      c.ours.push(mbps(c.plainBytes, r.ms));
      c.oursCpu.push(r.cpuMs);
      c.hwm.push(r.hwmKiB / 1024);
    } finally {
      await env.dropFiles(id);
    }
  };
  const gpgRef = async (c: Case) => {
    const out = path.join(dir, 'gpg.out');
    const cpu0 = childrenCpuMs();
    const r = await inGpgHome(gwHome, () => runCmd('gpg', ['--homedir', gwHome, '--batch', '--yes', '--status-fd', '2', '-o', out, '--decrypt', c.sealed]));
    const cpu = childrenCpuMs() - cpu0;
    await fsp.rm(out, { force: true });
    if (r.code !== 0 || !r.stderr.includes('[GNUPG:] GOODSIG')) throw new Error(`gpg --decrypt failed: ${r.stderr.slice(-500)}`);
    c.gpg.push(mbps(c.plainBytes, r.ms));
    c.gpgCpu.push(cpu);
    algorithms ??= algorithmsOf(r.stderr);
  };
  let algorithms: { cipher: string; digest: string } | null = null;

  // Warm-up: tsx's compile cache, page cache of the inputs.
  await ours(cases[0]!);
  await gpgRef(cases[0]!);
  for (const k of ['ours', 'gpg', 'hwm', 'oursCpu', 'gpgCpu'] as const) cases[0]![k].length = 0;

  for (const c of cases) {
    for (let run = 0; run < c.runs; run++) {
      ctx.log(`decrypt: ${c.label} ${c.kind} run ${run + 1}/${c.runs}`);
      if (run % 2 === 0) {
        await ours(c);
        await gpgRef(c);
      } else {
        await gpgRef(c);
        await ours(c);
      }
    }
  }
  await env.close();
  await fsp.rm(dir, { recursive: true, force: true });

  const targets: TargetCheck[] = cases.map((c) => {
    const r = summarize(pairedRatios(c.ours, c.gpg));
    return { what: `decrypt+verify ${c.label} ${c.kind} vs gpg`, value: `${r.median.toFixed(2)}×`, target: '≥ 1.0×', met: r.n ? r.median >= 1 : null };
  });
  const lines = [
    'Throughput = plaintext bytes ÷ time (MB/s, 10^6 bytes/s). **Ours**: `runDecryptStage` in a fresh worker-like child process per run '
    + '(only the stage call is timed: read spool, session key by openpgp, the SEIPD v1 layer (AES-CFB + MDC) by our `keys/pgp/seipd-v1.ts`, inner packets and signature by openpgp, plaintext sealed into quarantine with AES-256-GCM, fsync, '
    + 'promote, ledger update; the enqueue of the next stage is recorded, not sent to Redis). **gpg**: `gpg --decrypt -o <file>` with the same gateway key '
    + '(imported unprotected, so neither side runs a KDF inside the timing) and the partner key for verification; process start included. '
    + 'Files made by `gpg --sign --encrypt` with its defaults — uncompressed, because the gateway key (made by openpgp.js) lists Uncompressed first in its '
    + 'compression preferences, so gpg sends JSON as is — plus both forced to zlib (`--compress-algo zlib`, as a partner with another default would send; '
    + 'random bytes in a zlib packet are the worst case for the inflater\'s memory). '
    + 'gpg writes the encrypted packet in 8 KiB partial-length parts. Peak RSS = VmHWM of our child process.',
    '',
    ...table(['file', 'plaintext', 'upload (.gpg)', 'runs', 'ours MB/s', 'gpg MB/s', 'ours ÷ gpg', 'ours peak RSS MiB'], cases.map((c) => [
      `${c.label} ${c.kind}`, `${(c.plainBytes / MiB).toFixed(0)} MiB`, `${(c.sealedBytes / MiB).toFixed(1)} MiB`, String(c.runs),
      cell(c.ours), cell(c.gpg), ratioCell(pairedRatios(c.ours, c.gpg)), cell(c.hwm, 0),
    ])),
    '',
    ...cpuBudget(cases, algorithms),
    '',
    ...targets.map((t) => `- Target ${t.what} ${t.target}: ${t.value} — ${metMark(t.met)}`),
  ];
  return { title: '2. Decrypt + verify throughput', lines, targets };
}

/** OpenPGP algorithm ids gpg's status lines use (RFC 9580 §9.3, §9.5) → OpenSSL names. */
const SYM_ALGOS: Record<string, string> = { 7: 'aes-128', 8: 'aes-192', 9: 'aes-256' };
const HASH_ALGOS: Record<string, string> = { 2: 'sha1', 8: 'sha256', 9: 'sha384', 10: 'sha512', 11: 'sha224' };

/** The session cipher (DECRYPTION_INFO) and the signature's digest (VALIDSIG) of gpg's run. */
function algorithmsOf(status: string): { cipher: string; digest: string } | null {
  const info = /\[GNUPG:\] DECRYPTION_INFO \d+ (\d+)/.exec(status);
  const sig = /\[GNUPG:\] VALIDSIG (?:\S+ ){7}(\d+)/.exec(status);
  const cipher = info ? SYM_ALGOS[info[1]!] : undefined;
  const digest = sig ? HASH_ALGOS[sig[1]!] : undefined;
  return cipher && digest ? { cipher, digest } : null;
}

/** MB/s of one OpenSSL primitive through Node over `data` in 1 MiB updates, best of 3. */
function primitiveMBps(data: Buffer, make: () => { update(b: Buffer): unknown }): number {
  let best = Infinity;
  for (let r = 0; r < 3; r++) {
    const p = make();
    const t0 = performance.now();
    for (let i = 0; i < data.length; i += MiB) p.update(data.subarray(i, i + MiB));
    best = Math.min(best, performance.now() - t0);
  }
  return mbps(data.length, best);
}

/**
 * Where the time goes: CPU time of both sides, what our stage could reach with its work
 * spread perfectly over both cores, and the cryptography both must do, measured here.
 */
function cpuBudget(cases: Case[], algorithms: { cipher: string; digest: string } | null): string[] {
  const lines = [
    'CPU time per run (user + system: for ours the stage call, every thread of the process; for gpg the whole process, from this process\'s '
    + 'children\'s times in /proc, 10 ms ticks). "Both cores" is gpg\'s wall time ÷ half our CPU time: the ratio our stage would reach if all its '
    + 'work ran in parallel on the two cores of this machine with no overhead — where it is below 1.0×, the target needs less CPU work, not more threads.',
    '',
    ...table(['file', 'ours CPU ms', 'gpg CPU ms', 'ours CPU ÷ gpg CPU', 'ours ÷ gpg on both cores (bound)'], cases.map((c) => [
      `${c.label} ${c.kind}`, cell(c.oursCpu, 0), cell(c.gpgCpu, 0), ratioCell(pairedRatios(c.oursCpu, c.gpgCpu)),
      // gpg's wall ms ÷ half our CPU ms = (our CPU ms ÷ 2) as MB/s over gpg's MB/s.
      ratioCell(pairedRatios(c.oursCpu.map((ms) => mbps(c.plainBytes, ms / 2)), c.gpg)),
    ])),
  ];
  if (!algorithms) return lines;
  const ecb = `${algorithms.cipher}-ecb`;
  const key = randomBytes(Number(algorithms.cipher.slice(4)) / 8);
  const data = randomBytes(64 * MiB);
  const cipher = primitiveMBps(data, () => createCipheriv(ecb, key, null).setAutoPadding(false));
  const mdc = primitiveMBps(data, () => createHash('sha1'));
  const digest = primitiveMBps(data, () => createHash(algorithms.digest));
  const seal = primitiveMBps(data, () => createCipheriv('aes-256-gcm', randomBytes(32), randomBytes(12)));
  const floor = (...xs: number[]) => 1 / xs.reduce((a, x) => a + 1 / x, 0);
  const gpg64 = summarize(cases.filter((c) => c.label === cases[0]!.label && !c.kind.includes('zlib')).flatMap((c) => c.gpg)).median;
  return [
    ...lines,
    '',
    `The cryptography of these files (gpg's status lines: ${algorithms.cipher.toUpperCase()}, signatures over ${algorithms.digest.toUpperCase()}), `
    + 'measured in the benchmark process (OpenSSL through Node, 1 MiB updates, best of 3): '
    + `${ecb.toUpperCase()} (what our CFB runs on) ${fmt(cipher, 0)} MB/s, SHA-1 (the MDC) ${fmt(mdc, 0)} MB/s, `
    + `${algorithms.digest.toUpperCase()} (the signature) ${fmt(digest, 0)} MB/s, and AES-256-GCM (our sealing of the plaintext at rest, which gpg does not do) ${fmt(seal, 0)} MB/s. `
    + `One after another on one core that is ${fmt(floor(cipher, mdc, digest), 0)} MB/s without the sealing and ${fmt(floor(cipher, mdc, digest, seal), 0)} MB/s with it; `
    + `gpg decrypted the uncompressed ${cases[0]!.label} files at ${fmt(gpg64, 0)} MB/s (median), the whole process included.`,
  ];
}
