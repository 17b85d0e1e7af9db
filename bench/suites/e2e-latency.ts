/**
 * §3 End-to-end latency of small batches (100 records, gpg-signed and encrypted):
 * from the moment the SFTP CLOSE is sent to the moment the ack appears in the partner's
 * outbox on disk (inotify on the outbox folder), through the real `pgw start` (role all:
 * SFTP server and workers in one process, as `npm start` runs it). Uploads use an ssh2
 * Client (one connection per partner, one batch at a time per partner, the next batch
 * after the previous ack): 1 partner, then N partners at once.
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

export async function runE2eLatency(ctx: BenchContext): Promise<SectionResult> {
  const env = await GatewayEnv.create(ctx.root, 'e2e-gw');
  const nPartners = ctx.sizes.e2ePartners;
  ctx.log(`e2e: ${nPartners} partners`);
  const partners: BenchPartner[] = [];
  for (let i = 1; i <= nPartners; i++) partners.push(await env.addPartner(`bench-e2e-${String(i).padStart(2, '0')}`));
  const perPartner = Math.ceil(ctx.sizes.e2eBatches / nPartners);
  ctx.log(`e2e: sealing ${ctx.sizes.e2eBatches + 10 + perPartner * nPartners} batches with gpg`);
  const warm = await makeBatches(ctx, env, partners[0]!, 10, 'warm');
  const single = await makeBatches(ctx, env, partners[0]!, ctx.sizes.e2eBatches, 'one');
  const multi: { name: string; data: Buffer }[][] = [];
  for (const p of partners) multi.push(await makeBatches(ctx, env, p, perPartner, 'many'));

  await env.start('all');
  const watches = partners.map((p) => new OutboxWatch(env.dataDir.outboxFor(p.id, 'live')));
  const ups = await Promise.all(partners.map((p) => Ssh2Uploader.connect(env.sftpPort, p.id, p.sshKey)));
  const one: Sample[] = [];
  const many: Sample[] = [];
  let oneSecs = 0;
  let manySecs = 0;
  try {
    ctx.log('e2e: warm-up');
    await loop(ups[0]!, watches[0]!, partners[0]!, warm, null);
    ctx.log(`e2e: 1 partner × ${single.length} batches`);
    let t0 = performance.now();
    await loop(ups[0]!, watches[0]!, partners[0]!, single, one);
    oneSecs = (performance.now() - t0) / 1000;
    ctx.log(`e2e: ${nPartners} partners × ${perPartner} batches at once`);
    t0 = performance.now();
    await Promise.all(partners.map((p, i) => loop(ups[i]!, watches[i]!, p, multi[i]!, many)));
    manySecs = (performance.now() - t0) / 1000;
  } finally {
    for (const u of ups) u.close();
    for (const w of watches) w.close();
  }

  // Where the time went, from the ledger's stage events (ms resolution).
  const stageMs: Record<string, number[]> = { 'received → decrypted': [], 'decrypted → validated': [], 'validated → ack recorded': [] };
  const outcomes = new Map<string, number>();
  await env.withLedger(async (l) => {
    for (const p of partners) {
      for (const b of await l.batches.list({ partnerId: p.id, limit: 10_000 })) {
        if (!b.file_name.startsWith('one-') && !b.file_name.startsWith('many-')) continue;
        const key = `${b.file_name.startsWith('one-') ? '1 partner' : `${nPartners} partners`}: ${b.outcome ?? b.stage}`;
        outcomes.set(key, (outcomes.get(key) ?? 0) + 1);
        const ev = await l.batches.events(b.id);
        const at = (stage: string) => ev.find((e) => e.stage === stage && e.outcome !== 'error')?.at;
        const r = at('received');
        const d = at('decrypt');
        const v = at('validate');
        const a = at('ack');
        if (!b.file_name.startsWith('one-') || !r || !d || !v || !a) continue;
        stageMs['received → decrypted']!.push(Date.parse(d) - Date.parse(r));
        stageMs['decrypted → validated']!.push(Date.parse(v) - Date.parse(d));
        stageMs['validated → ack recorded']!.push(Date.parse(a) - Date.parse(v));
      }
    }
  });
  await env.close();

  const row = (label: string, s: Sample[], secs: number) => {
    const lat = s.map((x) => x.latencyMs);
    const close = s.map((x) => x.closeMs);
    return [label, String(s.length), fmt(pct(lat, 50), 0), fmt(pct(lat, 95), 0), fmt(pct(lat, 99), 0), fmt(Math.max(...lat), 0), fmt(pct(close, 50), 1), fmt(s.length / secs, 1)];
  };
  const p50 = pct(one.map((x) => x.latencyMs), 50);
  const p99 = pct(one.map((x) => x.latencyMs), 99);
  const targets: TargetCheck[] = [
    { what: 'e2e p50, 1 partner', value: `${fmt(p50, 0)} ms`, target: '< 100 ms', met: one.length ? p50 < 100 : null },
    { what: 'e2e p99, 1 partner', value: `${fmt(p99, 0)} ms`, target: '< 300 ms', met: one.length ? p99 < 300 : null },
  ];
  const lines = [
    `Batches of ${ctx.sizes.e2eRecords} valid records (JSON, ≈${Math.round((single[0]?.data.length ?? 0) / 1024)} KiB as uploaded), each signed and encrypted by gpg beforehand. `
    + '**Latency** = SFTP CLOSE sent → ack file present in the partner\'s outbox (inotify on the data dir), through `pgw start --role all` with default settings '
    + '(worker concurrency 4). Client: ssh2 `Client` (not OpenSSH `sftp`: starting hundreds of sftp processes would dominate), one connection per partner, '
    + 'each partner uploading its next batch once the previous ack is there; 10 warm-up batches not counted. **CLOSE** = CLOSE sent → CLOSE status '
    + '(the ingest commit). **batches/s** = batches ÷ wall time of the phase (closed loop, so it is throughput at that concurrency, not a saturation point). One pass per phase; percentiles over all its batches.',
    '',
    ...table(['phase', 'batches', 'p50 ms', 'p95 ms', 'p99 ms', 'max ms', 'CLOSE p50 ms', 'batches/s'], [
      row('1 partner', one, oneSecs),
      row(`${nPartners} partners at once`, many, manySecs),
    ]),
    '',
    'Outcomes (ledger): ' + [...outcomes].map(([k, v]) => `${k} ${v}`).join('; ') + '.',
    '',
    'Where the time goes at 1 partner (median of ledger stage-event gaps, ms resolution; the ack file appears just before "ack recorded"):',
    '',
    ...table(['gap', 'p50 ms', 'p95 ms'], Object.entries(stageMs).map(([k, v]) => [k, fmt(pct(v, 50), 0), fmt(pct(v, 95), 0)])),
    '',
    ...targets.map((t) => `- Target ${t.what} ${t.target}: ${t.value} — ${metMark(t.met)}`),
  ];
  return { title: '3. End-to-end latency, small batches', lines, targets };
}
