/**
 * §6 Many sessions (issue 25, target 3): 100 partners × 5 authenticated SFTP sessions held
 * open at once against `pgw start --role gateway` with a trickle of uploads — refused and
 * dropped sessions counted, gateway RSS per idle session — and SSH handshakes per second
 * (connect + authenticate + disconnect, N in parallel) against the gateway and a private
 * OpenSSH `sshd`, interleaved, from the same ssh2 client in this process.
 *
 * Limits: none raised. The bench connects from 127.0.0.1, so it keeps at most
 * PGW_MAX_UNAUTH_PER_ADDRESS (default 8) connections unauthenticated at once — a cron herd
 * from 100 partners comes from many addresses; one address meets the per-address cap first.
 * Five sessions per partner are within PGW_MAX_SESSIONS_PER_PARTNER (default 8).
 */
import { promises as fsp, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import ssh2 from 'ssh2';
import type { BenchContext } from '../lib/context.js';
import { CIPHER } from '../lib/context.js';
import { GatewayEnv, type BenchPartner } from '../lib/gateway-env.js';
import { writeJsonBatch } from '../lib/files.js';
import { startOpenssh } from '../lib/openssh-server.js';
import { Ssh2Uploader } from '../lib/ssh2-uploader.js';
import { readRss } from '../lib/rss.js';
import { processCpuMs } from '../lib/procs.js';
import { cell, metMark, ratioCell, table, type SectionResult, type TargetCheck } from '../lib/report.js';
import { pairedRatios, rotate, summarize } from '../lib/stats.js';

const { Client } = ssh2;
const TITLE = '6. Many sessions';
/** Connections in flight at once: the gateway's default pre-auth cap per address. */
const PARALLEL = 8;

interface Login { port: number; username: string; key: Buffer; localAddress?: string }

/** Connect, authenticate, disconnect (resolves when the socket closed). */
function handshake(l: Login): Promise<void> {
  return new Promise((resolve, reject) => {
    const c = new Client();
    let ok = false;
    c.on('error', reject);
    c.on('ready', () => {
      ok = true;
      c.end();
    });
    c.on('close', () => (ok ? resolve() : reject(new Error('closed before ready'))));
    c.connect({ host: '127.0.0.1', port: l.port, localAddress: l.localAddress, username: l.username, privateKey: l.key, algorithms: { cipher: [CIPHER] as ssh2.CipherAlgorithm[] }, readyTimeout: 30_000 });
  });
}

/** Run `jobs` with at most `n` at once; returns the failures' messages. */
async function pool<T>(items: readonly T[], n: number, job: (x: T) => Promise<void>): Promise<string[]> {
  const errors: string[] = [];
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(n, items.length) }, async () => {
    while (next < items.length) {
      const x = items[next++]!;
      await job(x).catch((e: Error) => errors.push(e.message));
    }
  }));
  return errors;
}

/** CPU ms (user + system) of a process and its reaped children (sshd's per-connection processes). */
function cpuWithChildrenMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) * 10;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const GC_ON_SIGNAL = fileURLToPath(new URL('../lib/gc-on-signal.mjs', import.meta.url));

interface Mem { rssKiB: number; heapKiB: number }

/**
 * After two full garbage collections in `pid` (see gc-on-signal.mjs): its VmRSS and its live
 * JavaScript memory (V8 heap used + external + array buffers, from process.memoryUsage()).
 */
async function memAfterGc(pid: number, memFile: string): Promise<Mem> {
  for (let i = 0; i < 2; i++) {
    process.kill(pid, 'SIGUSR2');
    await sleep(1000);
  }
  const m = JSON.parse(readFileSync(memFile, 'utf8')) as NodeJS.MemoryUsage;
  return { rssKiB: (await readRss(pid))!.rssKiB, heapKiB: (m.heapUsed + m.external + m.arrayBuffers) / 1024 };
}

export async function runSessions(ctx: BenchContext): Promise<SectionResult> {
  const nPartners = ctx.quick ? 10 : 100;
  const perPartner = 5;
  const holdSeconds = ctx.quick ? 10 : 45;
  const bursts = ctx.quick ? 40 : 200;
  const env = await GatewayEnv.create(ctx.root, 'sess-gw');
  ctx.log(`sessions: registering ${nPartners} partners`);
  const partners: BenchPartner[] = [];
  for (let i = 0; i < nPartners; i++) partners.push(await env.addPartner(`bench-s${String(i).padStart(3, '0')}`));
  // The trickle: the sessions of the first `uploaders` partners upload a gpg-signed and
  // encrypted 10-record batch, each every ~`everyMs` (the same file again under a new name:
  // the gateway stores, fsyncs, records and enqueues it like any other; no worker runs).
  const uploaders = Math.min(20, nPartners);
  const everyMs = 10_000;
  const sealed = new Map<string, Buffer>();
  for (const p of partners.slice(0, uploaders)) {
    const plain = path.join(env.dir, `${p.id}.json`);
    await writeJsonBatch(plain, { records: 10 });
    await env.seal(p, plain, `${plain}.pgp`);
    sealed.set(p.id, await fsp.readFile(`${plain}.pgp`));
  }
  const sshd = await startOpenssh(path.join(env.dir, 'sshd'), partners[0]!.sshPub, CIPHER);
  // --expose-gc + a SIGUSR2 handler (bench/lib/gc-on-signal.mjs): RSS is read after a full GC.
  const memFile = path.join(env.dir, 'gateway-memory.json');
  const gw = await env.start('gateway', { NODE_OPTIONS: `--expose-gc --import=${pathToFileURL(GC_ON_SIGNAL).href}`, BENCH_MEM_FILE: memFile });
  const keys = new Map(partners.map((p) => [p.id, readFileSync(p.sshKey)]));

  // Handshakes/s, interleaved per run in a rotating order. The gateway's logins cycle
  // through the partners (each partner's session cap is never near).
  const gwLogins = Array.from({ length: bursts }, (_, i) => ({ port: env.sftpPort, username: partners[i % nPartners]!.id, key: keys.get(partners[i % nPartners]!.id)! }));
  const sshdLogins = Array.from({ length: bursts }, () => ({ port: sshd.port, username: sshd.user, key: keys.get(partners[0]!.id)! }));
  const rate = { gateway: [] as number[], sshd: [] as number[] };
  const cpu = { gateway: [] as number[], sshd: [] as number[] };
  const handshakeFailures = { gateway: 0, sshd: 0 };
  const pid = { gateway: gw.pid, sshd: sshd.proc.child.pid! };
  await pool(gwLogins.slice(0, 16), PARALLEL, handshake); // warm-up
  await pool(sshdLogins.slice(0, 16), PARALLEL, handshake);
  for (let run = 0; run < ctx.runs; run++) {
    for (const who of rotate(['gateway', 'sshd'] as const, run)) {
      const c0 = who === 'gateway' ? processCpuMs(pid.gateway) : cpuWithChildrenMs(pid.sshd);
      const t0 = performance.now();
      const errs = await pool(who === 'gateway' ? gwLogins : sshdLogins, PARALLEL, handshake);
      const s = (performance.now() - t0) / 1000;
      await sleep(200); // let sshd reap its last children before reading their CPU
      const c1 = who === 'gateway' ? processCpuMs(pid.gateway) : cpuWithChildrenMs(pid.sshd);
      handshakeFailures[who] += errs.length;
      if (errs.length) ctx.log(`sessions: ${who} handshake failures: ${[...new Set(errs)].join('; ')}`);
      rate[who].push((bursts - errs.length) / s);
      cpu[who].push((c1 - c0) / bursts);
    }
  }

  // 500 sessions held open.
  const idle = await memAfterGc(gw.pid, memFile);
  const holders: Ssh2Uploader[] = [];
  const logins = partners.flatMap((p) => Array.from({ length: perPartner }, () => p));
  let dropped = 0;
  let closing = false;
  const held = new Map<Ssh2Uploader, string>();
  const t0 = performance.now();
  const refusals = await pool(logins, PARALLEL, async (p) => {
    const u = await Ssh2Uploader.connect(env.sftpPort, p.id, p.sshKey);
    u.client.on('close', () => {
      if (!closing) dropped++;
    });
    holders.push(u);
    held.set(u, p.id);
  });
  const connectSeconds = (performance.now() - t0) / 1000;
  ctx.log(`sessions: ${holders.length} held (${refusals.length} refused) in ${connectSeconds.toFixed(1)} s; trickle for ${holdSeconds} s`);
  if (refusals.length) ctx.log(`sessions: refusals: ${[...new Set(refusals)].join('; ')}`);
  const cpuHold0 = processCpuMs(gw.pid);
  let uploads = 0;
  let uploadFailures = 0;
  const end = Date.now() + holdSeconds * 1000;
  let seq = 0;
  await Promise.all(holders.filter((u) => sealed.has(held.get(u)!)).map(async (u) => {
    const data = sealed.get(held.get(u)!)!;
    await sleep(Math.random() * everyMs);
    while (Date.now() < end) {
      try {
        await u.upload(`/inbox/trickle-${seq++}.json.pgp`, data);
        uploads++;
      } catch {
        uploadFailures++;
      }
      await sleep(everyMs * (0.5 + Math.random()));
    }
  }));
  const cpuHoldMs = processCpuMs(gw.pid) - cpuHold0;
  await sleep(1000);
  const full = await memAfterGc(gw.pid, memFile);
  closing = true;
  for (const u of holders) u.close();
  await sleep(1000);
  const after = await memAfterGc(gw.pid, memFile);
  const stillThere = holders.length;

  // Diagnostic, the cron-hour herd: every login at the same instant, partner i from its own
  // loopback address 127.0.0.(2+i) (so the per-address cap is not what refuses), against
  // both servers with their default caps (gateway: 64 unauthenticated in all; sshd:
  // MaxStartups 10:30:100, random early drop from 10).
  const herd = { gateway: { failed: 0, s: 0 }, sshd: { failed: 0, s: 0 } };
  for (const who of ['gateway', 'sshd'] as const) {
    await sleep(2000);
    const t1 = performance.now();
    const res = await Promise.allSettled(logins.map((p, i) => handshake({
      port: who === 'gateway' ? env.sftpPort : sshd.port, username: who === 'gateway' ? p.id : sshd.user,
      key: keys.get(who === 'gateway' ? p.id : partners[0]!.id)!, localAddress: `127.0.0.${2 + (i % nPartners)}`,
    })));
    herd[who] = { failed: res.filter((r) => r.status === 'rejected').length, s: (performance.now() - t1) / 1000 };
    ctx.log(`sessions: herd of ${logins.length} against ${who}: ${herd[who].failed} failed in ${herd[who].s.toFixed(1)} s`);
  }
  await sshd.stop();
  await env.close();

  const sessions = nPartners * perPartner;
  const per = (a: number, b: number) => `${((a - b) / Math.max(1, stillThere)).toFixed(1)} KiB`;
  const hsRatio = summarize(pairedRatios(rate.gateway, rate.sshd));
  const failures = refusals.length + dropped + uploadFailures;
  const targets: TargetCheck[] = [
    { what: `${sessions} concurrent SFTP sessions (${nPartners} partners × ${perPartner}): refused + dropped + failed uploads`, value: String(failures), target: '0', met: failures === 0 },
    { what: 'SSH handshakes/s vs OpenSSH sshd', value: `${hsRatio.median.toFixed(2)}×`, target: '≥ 1.0×', met: hsRatio.n ? hsRatio.median >= 1 : null },
  ];
  const lines = [
    `${nPartners} partners registered with their own ed25519 SSH keys and gpg keys; \`pgw start --role gateway\` with default limits. `
    + `Client: the ssh2 ${'`Client`'} in the benchmark process for every connection to both servers (${CIPHER}), at most ${PARALLEL} connections being set up at once `
    + '(the gateway\'s default PGW_MAX_UNAUTH_PER_ADDRESS: every connection comes from 127.0.0.1; OpenSSH\'s MaxStartups default 10:30:100 admits as many). '
    + 'No limit was raised: 5 sessions per partner are within PGW_MAX_SESSIONS_PER_PARTNER (8), successful logins never count towards a ban.',
    '',
    `**Handshakes**: connect + key exchange + public-key authentication + disconnect (until the socket closed), ${bursts} per run with ${PARALLEL} in parallel, `
    + `${ctx.runs} runs, servers alternating in a rotating order; the gateway's logins cycle through the partners, sshd's use one key of an \`AuthorizedKeysFile\`. `
    + 'Server CPU per handshake: the gateway process (all threads); sshd the listener plus its reaped per-connection processes (10 ms ticks).',
    '',
    ...table(['server', 'handshakes/s', 'server CPU ms per handshake', 'failures', 'gateway ÷ sshd'], [
      ['gateway (`pgw start --role gateway`)', cell(rate.gateway), cell(cpu.gateway), String(handshakeFailures.gateway), ratioCell(pairedRatios(rate.gateway, rate.sshd))],
      ['OpenSSH `sshd` (privilege separation, internal-sftp)', cell(rate.sshd), cell(cpu.sshd), String(handshakeFailures.sshd), '1.00×'],
    ]),
    '',
    `**Held sessions**: ${sessions} SSH connections each with an SFTP channel open, set up ${PARALLEL} at a time (${connectSeconds.toFixed(1)} s), held ${holdSeconds} s `
    + `while the ${uploaders * perPartner} sessions of ${uploaders} partners each uploaded a gpg-signed and encrypted 10-record batch every ${everyMs / 1000} s on average `
    + '(the same bytes under a new name each time: stored, fsynced, in the ledger and enqueued; no worker runs). Gateway VmRSS from /proc, each read after two full garbage '
    + 'collections (the gateway runs with `--expose-gc` and a SIGUSR2 handler preloaded: bench/lib/gc-on-signal.mjs): idle = after the handshake runs, '
    + 'before the first held session; held = 1 s after the trickle stopped, all sessions still open; after = 1 s after the client closed them all. '
    + 'RSS does not fall back after a GC (V8 and the allocator keep pages they once committed), so (held − idle) can hide the sessions in memory the handshake '
    + 'runs had already committed; the live JS memory from the gateway\'s own process.memoryUsage() after the same GCs does not have that blind spot. '
    + 'After close near idle means no leak per session.',
    '',
    ...table(['figure', 'value'], [
      ['sessions requested / held', `${sessions} / ${holders.length}`],
      ['refused (connect or auth failed)', String(refusals.length)],
      ['dropped while held', String(dropped)],
      ['uploads ok / failed', `${uploads} / ${uploadFailures}`],
      ['gateway CPU during the hold', `${(cpuHoldMs / holdSeconds / 10).toFixed(1)} % of one core`],
      ['gateway RSS idle / held / after close', `${(idle.rssKiB / 1024).toFixed(1)} / ${(full.rssKiB / 1024).toFixed(1)} / ${(after.rssKiB / 1024).toFixed(1)} MiB`],
      ['gateway live JS memory (heap used + external + array buffers) idle / held / after close', `${(idle.heapKiB / 1024).toFixed(1)} / ${(full.heapKiB / 1024).toFixed(1)} / ${(after.heapKiB / 1024).toFixed(1)} MiB`],
      ['**gateway RSS per held session**: (held − idle) ÷ sessions; (held − after close) ÷ sessions', `${per(full.rssKiB, idle.rssKiB)}; ${per(full.rssKiB, after.rssKiB)}`],
      ['**gateway live JS memory per held session**: (held − idle) ÷ sessions; (held − after close) ÷ sessions', `${per(full.heapKiB, idle.heapKiB)}; ${per(full.heapKiB, after.heapKiB)}`],
    ]),
    '',
    `**Diagnostic — the cron hour**: all ${sessions} logins (connect + auth + disconnect) started at the same instant, partner i from its own loopback address `
    + '127.0.0.(2+i), both servers with their default caps (gateway: PGW_MAX_UNAUTH_CONNECTIONS 64 in all, 8 per address; sshd: MaxStartups 10:30:100, '
    + 'i.e. random early drop from 10 unauthenticated connections). A refused client (OpenSSH `sftp` in a cron job) fails and does not retry by itself.',
    '',
    ...table(['server', 'logins refused or failed', 'all done after'], [
      ['gateway', `${herd.gateway.failed} of ${sessions}`, `${herd.gateway.s.toFixed(1)} s`],
      ['OpenSSH `sshd`', `${herd.sshd.failed} of ${sessions}`, `${herd.sshd.s.toFixed(1)} s`],
    ]),
    '',
    ...targets.map((t) => `- Target ${t.what} ${t.target}: ${t.value} — ${metMark(t.met)}`),
  ];
  return { title: TITLE, lines, targets };
}
