/**
 * §2 Decrypt + verify throughput of gpg-made signed+encrypted files: our decrypt stage
 * (`runDecryptStage` on a spooled batch, in a fresh worker-like process: openpgp stream →
 * sealed quarantine → fsync → promote → ledger) vs `gpg --decrypt` of the same file into a
 * file. Files are made the way a partner's gpg makes them by default (sign + encrypt to
 * the gateway key with gpg's defaults), for compressible JSON, incompressible random bytes,
 * and both again with gpg told to compress with zlib.
 */
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import type { BenchContext } from '../lib/context.js';
import { GatewayEnv } from '../lib/gateway-env.js';
import { runChildJson } from '../lib/child.js';
import { runCmd } from '../lib/procs.js';
import { fileSize, writeJsonBatch, writeRandomFile } from '../lib/files.js';
import { cell, metMark, ratioCell, table, type SectionResult, type TargetCheck } from '../lib/report.js';
import { MiB, mbps, pairedRatios, summarize } from '../lib/stats.js';

interface StageRun {
  ms: number;
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
        label: size.label, kind, plainBytes, sealed, sealedBytes: await fileSize(sealed), runs: last ? ctx.bigRuns : ctx.runs, ours: [], gpg: [], hwm: [],
      });
    }
  }

  const ours = async (c: Case) => {
    const id = await env.spool(partner.id, c.sealed);
    try {
      const r = await runChildJson<StageRun>('lib/stage-runner.ts', ['decrypt', id], env.env);
      if (r.stage !== 'validate') throw new Error(`decrypt stage did not pass the batch (stage ${r.stage}, ${r.errorCode})`);
      c.ours.push(mbps(c.plainBytes, r.ms));
      c.hwm.push(r.hwmKiB / 1024);
    } finally {
      await env.dropFiles(id);
    }
  };
  const gpgRef = async (c: Case) => {
    const out = path.join(dir, 'gpg.out');
    const r = await runCmd('gpg', ['--homedir', gwHome, '--batch', '--yes', '--status-fd', '2', '-o', out, '--decrypt', c.sealed]);
    await fsp.rm(out, { force: true });
    if (r.code !== 0 || !r.stderr.includes('[GNUPG:] GOODSIG')) throw new Error(`gpg --decrypt failed: ${r.stderr.slice(-500)}`);
    c.gpg.push(mbps(c.plainBytes, r.ms));
  };

  // Warm-up: tsx's compile cache, page cache of the inputs.
  await ours(cases[0]!);
  await gpgRef(cases[0]!);
  cases[0]!.ours.length = 0;
  cases[0]!.gpg.length = 0;
  cases[0]!.hwm.length = 0;

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
    + '(only the stage call is timed: read spool, session key by openpgp, the SEIPD v1 layer (AES-CFB + MDC) by our `workers/seipd-v1.ts`, inner packets and signature by openpgp, plaintext sealed into quarantine with AES-256-GCM, fsync, '
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
    ...targets.map((t) => `- Target ${t.what} ${t.target}: ${t.value} — ${metMark(t.met)}`),
  ];
  return { title: '2. Decrypt + verify throughput', lines, targets };
}
