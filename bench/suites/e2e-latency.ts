/**
 * §3 End-to-end latency of small batches (100 records, gpg-signed and encrypted):
 * from the moment the SFTP CLOSE is sent to the moment the ack appears in the partner's
 * outbox on disk (inotify on the outbox folder), through the real `pgw start` (role all:
 * SFTP server and workers in one process, as `npm start` runs it). Uploads use an ssh2
 * Client (one connection per partner, one batch at a time per partner, the next batch
 * after the previous ack): 1 partner, then 16 and 64 partners at once. The CPU time of
 * the `pgw` process is read from /proc around each phase (CPU per batch: a figure the
 * other engineers' tests on the machine do not move much, unlike wall time).
 *
 * Reference: what an operator's script on OpenSSH would cost per batch —
 * `gpg --decrypt` (verifying the signature) and `gpg --sign --encrypt` of a 1 KiB ack —
 * two at a time (two GnuPG homes, one per core), over the same files, measured in the
 * same run before the first and after the last multi-partner phase.
 */
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import type { BenchContext } from '../lib/context.js';
import { GatewayEnv, type BenchPartner } from '../lib/gateway-env.js';
import { writeJsonBatch } from '../lib/files.js';
import { OutboxWatch } from '../lib/outbox-watch.js';
import { Ssh2Uploader } from '../lib/ssh2-uploader.js';
import { fmt, metMark, table, type SectionResult, type TargetCheck } from '../lib/report.js';
import { percentile } from '../lib/stats.js';
import { childrenCpuMs, onCleanup, processCpuMs } from '../lib/procs.js';
import { gpg, killAgent } from '../lib/gateway-env.js';

interface Sample {
  partner: string;
  name: string;
  closeMs: number;
  latencyMs: number;
}

async function makeBatches(ctx: BenchContext, env: GatewayEnv, p: BenchPartner, count: number, tag: string): Promise<{ name: string; data: Buffer }[]> {
  const dir = path.join(env.dir, 'batches', p.id);
  await fsp.mkdir(dir, { recursive: true });
  const out: { name: string; data: Buffer }[] = [];
  const make = async (i: number) => {
    const name = `${tag}-${String(i).padStart(4, '0')}.json.pgp`;
    const plain = path.join(dir, `${name}.plain`);
    await writeJsonBatch(plain, { records: ctx.sizes.e2eRecords, reference: `${p.id}-${tag}-${i}` });
    await env.seal(p, plain, path.join(dir, name));
    out[i] = { name, data: await fsp.readFile(path.join(dir, name)) };
    await fsp.rm(plain);
  };
  // One after the other: every partner's key is in the one GnuPG home of the env, where gpg runs one at a time.
  for (let i = 0; i < count; i++) await make(i);
  return out;
}

async function loop(up: Ssh2Uploader, watch: OutboxWatch, p: BenchPartner, batches: { name: string; data: Buffer }[], samples: Sample[] | null): Promise<void> {
  for (const b of batches) {
    const t = await up.upload(`/inbox/${b.name}`, b.data);
    const acked = await watch.waitFor(`${b.name}.ack.pgp`, 120_000);
    samples?.push({ partner: p.id, name: b.name, closeMs: t.closeOk - t.closeSent, latencyMs: acked - t.closeSent });
  }
}

function pct(xs: number[], p: number): number {
  return percentile([...xs].sort((a, b) => a - b), p);
}

interface Phase {
  partners: number;
  /** `pgw start --role all` (one process), or `--role gateway` and `--role worker` as two processes. */
  roles: 'all' | 'split';
  batches: { name: string; data: Buffer }[][];
  samples: Sample[];
  secs: number;
  cpuMs: number;
}

interface Reference {
  batches: number;
  secs: number;
  /** CPU of the gpg processes (not of gpg-agent, a daemon, which does the private-key operations). */
  cpuMs: number;
}

/** A 1 KiB ack document, as an operator's script would write one. */
function ackText(i: number): string {
  const doc = { type: 'ack', batch: `ref-${i}`, status: 'accepted', records: { total: 100, accepted: 100, rejected: 0 }, errors: [] as string[], pad: '' };
  doc.pad = 'x'.repeat(Math.max(0, 1024 - JSON.stringify(doc).length - 1));
  return `${JSON.stringify(doc)}\n`;
}

/**
 * The reference: every file decrypted and verified by gpg, then a 1 KiB ack signed and
 * encrypted to its partner, two files at a time (one per GnuPG home).
 */
async function reference(env: GatewayEnv, homes: string[], files: { partner: BenchPartner; file: string }[]): Promise<Reference> {
  const work = path.join(env.dir, 'ref-work');
  await fsp.mkdir(work, { recursive: true });
  const one = async (home: string, f: { partner: BenchPartner; file: string }, i: number) => {
    const plain = path.join(work, `${i}.json`);
    const dec = await gpg(home, ['--trust-model', 'always', '--status-fd', '1', '-o', plain, '--decrypt', f.file]);
    if (!/\[GNUPG:\] GOODSIG /.test(dec.stdout.toString('utf8'))) throw new Error(`reference: gpg did not verify ${f.file}: ${dec.stdout.toString('utf8')} ${dec.stderr}`);
    const ack = path.join(work, `${i}.ack.json`);
    await fsp.writeFile(ack, ackText(i));
    await gpg(home, ['--trust-model', 'always', '-r', f.partner.fingerprint, '-u', env.gatewayFingerprint, '-o', `${ack}.pgp`, '--sign', '--encrypt', ack]);
    await fsp.rm(plain);
  };
  const cpu0 = childrenCpuMs();
  const t0 = performance.now();
  let next = 0;
  await Promise.all(homes.map(async (home) => {
    for (let i = next++; i < files.length; i = next++) await one(home, files[i]!, i);
  }));
  const secs = (performance.now() - t0) / 1000;
  const cpuMs = childrenCpuMs() - cpu0;
  await fsp.rm(work, { recursive: true, force: true });
  return { batches: files.length, secs, cpuMs };
}

/** Two GnuPG homes with the gateway's key and the partners' keys: the second a copy of the first (without its agent's sockets). */
async function referenceHomes(env: GatewayEnv): Promise<string[]> {
  const a = await env.gatewayGpgHome();
  const b = path.join(env.dir, 'gw-2');
  await fsp.cp(a, b, { recursive: true, filter: (src) => !path.basename(src).startsWith('S.') });
  onCleanup('second gateway gpg agent', () => killAgent(b));
  return [a, b];
}

export async function runE2eLatency(ctx: BenchContext): Promise<SectionResult> {
  const env = await GatewayEnv.create(ctx.root, 'e2e-gw');
  // BENCH_E2E_PHASES=1,16 runs some phases only (profiling).
  const sizes = process.env.BENCH_E2E_PHASES?.split(',').map(Number).filter((n) => n > 0) ?? ctx.sizes.e2ePhases;
  const nMax = Math.max(...sizes);
  ctx.log(`e2e: ${nMax} partners`);
  const partners: BenchPartner[] = [];
  for (let i = 1; i <= nMax; i++) partners.push(await env.addPartner(`bench-e2e-${String(i).padStart(2, '0')}`));
  const phases: Phase[] = [];
  for (const n of sizes) {
    const perPartner = Math.ceil(ctx.sizes.e2eBatches / n);
    ctx.log(`e2e: sealing ${perPartner * n} batches for ${n} partner(s) with gpg`);
    const batches: { name: string; data: Buffer }[][] = [];
    for (const p of partners.slice(0, n)) batches.push(await makeBatches(ctx, env, p, perPartner, `p${n}`));
    phases.push({ partners: n, roles: 'all', batches, samples: [], secs: 0, cpuMs: 0 });
  }
  // Diagnostic (BENCH_E2E_SPLIT=0 skips it): the multi-partner phases again with the gateway
  // and the workers in two processes — what the second core is worth (issue 25).
  const split = process.env.BENCH_E2E_SPLIT === '0' ? [] : sizes.filter((n) => n > 1);
  for (const n of split) {
    const perPartner = Math.ceil(ctx.sizes.e2eBatches / n);
    ctx.log(`e2e: sealing ${perPartner * n} batches for ${n} partners (two processes) with gpg`);
    const batches: { name: string; data: Buffer }[][] = [];
    for (const p of partners.slice(0, n)) batches.push(await makeBatches(ctx, env, p, perPartner, `s${n}`));
    phases.push({ partners: n, roles: 'split', batches, samples: [], secs: 0, cpuMs: 0 });
  }
  const warm = await makeBatches(ctx, env, partners[0]!, 10, 'warm');
  // The reference decrypts the files of the first multi-partner phase (or of the only one).
  const refPhase = phases.find((ph) => ph.partners > 1) ?? phases[0]!;
  const refFiles = refPhase.batches.flatMap((bs, i) => bs.map((b) => ({ partner: partners[i]!, file: path.join(env.dir, 'batches', partners[i]!.id, b.name) })));
  const homes = await referenceHomes(env);
  // Warm both GnuPG homes (agent start, key cache) outside the timing.
  await reference(env, homes, refFiles.slice(0, 4));
  const refs: Reference[] = [];

  const warm2 = split.length ? await makeBatches(ctx, env, partners[0]!, 10, 'warm2') : [];

  const watches = partners.map((p) => new OutboxWatch(env.dataDir.outboxFor(p.id, 'live')));
  let ups: Ssh2Uploader[] = [];
  let pids: number[] = [];
  /** Start the roles, connect every partner and warm up with `w`. */
  const startRoles = async (roles: Phase['roles'], w: { name: string; data: Buffer }[]) => {
    pids = roles === 'all' ? [(await env.start('all')).pid] : [(await env.start('gateway')).pid, (await env.start('worker')).pid];
    // One after the other: the gateway admits at most PGW_MAX_UNAUTH_PER_ADDRESS (8)
    // unauthenticated connections per address, and every partner here is 127.0.0.1.
    ups = [];
    for (const p of partners) ups.push(await Ssh2Uploader.connect(env.sftpPort, p.id, p.sshKey));
    ctx.log(`e2e: warm-up (${roles === 'all' ? 'one process' : 'two processes'})`);
    await loop(ups[0]!, watches[0]!, partners[0]!, w, null);
  };
  const cpuNow = () => pids.reduce((a, pid) => a + processCpuMs(pid), 0);
  try {
    await startRoles('all', warm);
    for (const ph of phases) {
      if (ph.roles === 'split' && pids.length === 1) {
        ctx.log('e2e: reference (gpg), after');
        refs.push(await reference(env, homes, refFiles));
        for (const u of ups) u.close();
        await env.stopRoles();
        await startRoles('split', warm2);
      }
      if (ph === refPhase && ph.partners > 1) {
        ctx.log('e2e: reference (gpg), before');
        refs.push(await reference(env, homes, refFiles));
      }
      ctx.log(`e2e: ${ph.partners} partner(s) × ${ph.batches[0]!.length} batches at once${ph.roles === 'split' ? ', two processes' : ''}`);
      const cpu0 = cpuNow();
      const t0 = performance.now();
      await Promise.all(ph.batches.map((bs, i) => loop(ups[i]!, watches[i]!, partners[i]!, bs, ph.samples)));
      ph.secs = (performance.now() - t0) / 1000;
      ph.cpuMs = cpuNow() - cpu0;
    }
    if (pids.length === 1) {
      ctx.log('e2e: reference (gpg), after');
      refs.push(await reference(env, homes, refFiles));
    }
  } finally {
    for (const u of ups) u.close();
    for (const w of watches) w.close();
  }

  // Where the time went, from the ledger's stage events (ms resolution).
  const first = phases[0]!;
  const stageMs: Record<string, number[]> = { 'received → decrypted': [], 'decrypted → validated': [], 'validated → ack recorded': [] };
  const outcomes = new Map<string, number>();
  await env.withLedger(async (l) => {
    for (const p of partners) {
      for (const b of await l.batches.list({ partnerId: p.id, limit: 10_000 })) {
        const tag = /^([ps])(\d+)-/.exec(b.file_name);
        if (!tag) continue;
        const key = `${tag[2]} partner(s)${tag[1] === 's' ? ', two processes' : ''}: ${b.outcome ?? b.stage}`;
        outcomes.set(key, (outcomes.get(key) ?? 0) + 1);
        if (tag[1] !== 'p' || Number(tag[2]) !== first.partners) continue;
        const ev = await l.batches.events(b.id);
        const at = (stage: string) => ev.find((e) => e.stage === stage && e.outcome !== 'error')?.at;
        const r = at('received');
        const d = at('decrypt');
        const v = at('validate');
        const a = at('ack');
        if (!r || !d || !v || !a) continue;
        stageMs['received → decrypted']!.push(Date.parse(d) - Date.parse(r));
        stageMs['decrypted → validated']!.push(Date.parse(v) - Date.parse(d));
        stageMs['validated → ack recorded']!.push(Date.parse(a) - Date.parse(v));
      }
    }
  });
  await env.close();

  const refRate = refs.length ? refs.reduce((a, r) => a + r.batches / r.secs, 0) / refs.length : NaN;
  const refCpu = refs.length ? refs.reduce((a, r) => a + r.cpuMs / r.batches, 0) / refs.length : NaN;
  const rate = (ph: Phase) => ph.samples.length / ph.secs;
  const row = (ph: Phase) => {
    const lat = ph.samples.map((x) => x.latencyMs);
    const close = ph.samples.map((x) => x.closeMs);
    const label = `${ph.partners} partner${ph.partners > 1 ? 's at once' : ''}${ph.roles === 'split' ? '; gateway and worker as two processes (diagnostic)' : ''}`;
    return [label, String(ph.samples.length), fmt(pct(lat, 50), 0), fmt(pct(lat, 95), 0), fmt(pct(lat, 99), 0),
      fmt(Math.max(...lat), 0), fmt(pct(close, 50), 1), fmt(rate(ph), 1), fmt(ph.cpuMs / ph.samples.length, 1), `${fmt(rate(ph) / refRate, 2)}×`];
  };
  const targets: TargetCheck[] = [];
  if (first.partners === 1) {
    const lat = first.samples.map((x) => x.latencyMs);
    targets.push(
      { what: 'e2e p50, 1 partner', value: `${fmt(pct(lat, 50), 0)} ms`, target: '< 100 ms', met: lat.length ? pct(lat, 50) < 100 : null },
      { what: 'e2e p99, 1 partner', value: `${fmt(pct(lat, 99), 0)} ms`, target: '< 300 ms', met: lat.length ? pct(lat, 99) < 300 : null },
    );
  }
  const main = phases.filter((x) => x.roles === 'all');
  for (const ph of main.filter((x) => x.partners > 1)) {
    targets.push({ what: `e2e batches/s, ${ph.partners} partners vs gpg script`, value: `${fmt(rate(ph) / refRate, 2)}×`, target: '≥ 1.0×', met: ph.samples.length ? rate(ph) / refRate >= 1 : null });
  }
  const last = main[main.length - 1]!;
  if (last.partners > 1) {
    const lat = last.samples.map((x) => x.latencyMs);
    targets.push({ what: `e2e p99, ${last.partners} partners`, value: `${fmt(pct(lat, 99), 0)} ms`, target: '< 1000 ms', met: lat.length ? pct(lat, 99) < 1000 : null });
  }
  const lines = [
    `Batches of ${ctx.sizes.e2eRecords} valid records (JSON, ≈${Math.round((first.batches[0]?.[0]?.data.length ?? 0) / 1024)} KiB as uploaded), each signed and encrypted by gpg beforehand. `
    + '**Latency** = SFTP CLOSE sent → ack file present in the partner\'s outbox (inotify on the data dir), through `pgw start --role all` with default settings '
    + '(worker concurrency 4). Client: ssh2 `Client` (not OpenSSH `sftp`: starting hundreds of sftp processes would dominate), one connection per partner, '
    + 'each partner uploading its next batch once the previous ack is there; 10 warm-up batches not counted. **CLOSE** = CLOSE sent → CLOSE status '
    + '(the ingest commit). **batches/s** = batches ÷ wall time of the phase (closed loop, so it is throughput at that concurrency, not a saturation point). '
    + '**CPU ms/batch** = user + system time of the `pgw` process (every thread, /proc, 10 ms ticks; both processes in the two-process rows) over the phase ÷ its batches. One pass per phase; percentiles over all its batches. '
    + 'The two-process rows (a diagnostic, not a target: `--role gateway` and `--role worker`, a supported deployment) repeat the multi-partner phases with new batches, to show what the second core is worth.',
    '',
    `**Reference** (what an operator's script on OpenSSH would cost): per batch, \`gpg --decrypt\` of the uploaded file (signature verified: GOODSIG required) and \`gpg --sign --encrypt\` of a 1 KiB ack to the partner, `
    + `two batches at a time (two GnuPG homes with the gateway key, one per core), over the ${refFiles.length} files of the ${refPhase.partners}-partner phase, `
    + `once before the first multi-partner phase and once after the last one-process phase: ${refs.map((r) => `${fmt(r.batches / r.secs, 1)}`).join(' and ')} batches/s `
    + `(mean ${fmt(refRate, 1)}); gpg processes' CPU ${fmt(refCpu, 1)} ms per batch (gpg-agent, a daemon that does the private-key operations, not included).`,
    '',
    ...table(['phase', 'batches', 'p50 ms', 'p95 ms', 'p99 ms', 'max ms', 'CLOSE p50 ms', 'batches/s', 'CPU ms/batch', 'batches/s ÷ reference'], phases.map(row)),
    '',
    'Outcomes (ledger): ' + [...outcomes].map(([k, v]) => `${k} ${v}`).join('; ') + '.',
    '',
    `Where the time goes at ${first.partners} partner(s) (median of ledger stage-event gaps, ms resolution; the ack file appears just before "ack recorded"):`,
    '',
    ...table(['gap', 'p50 ms', 'p95 ms'], Object.entries(stageMs).map(([k, v]) => [k, fmt(pct(v, 50), 0), fmt(pct(v, 95), 0)])),
    '',
    ...targets.map((t) => `- Target ${t.what} ${t.target}: ${t.value} — ${metMark(t.met)}`),
  ];
  return { title: '3. End-to-end latency, small batches', lines, targets };
}
