/**
 * §1 SFTP upload throughput with the OpenSSH `sftp` client (aes128-gcm for all):
 * the gateway (`pgw start --role gateway`: hash, fsync, rename, ledger, enqueue before the
 * CLOSE status) vs a private OpenSSH sshd with internal-sftp vs a bare ssh2 SFTP server
 * writing to disk. Each run opens one session per server, then for every size measures the
 * servers back to back in an order that rotates from run to run.
 */
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { CIPHER, type BenchContext } from '../lib/context.js';
import { GatewayEnv, ROOT } from '../lib/gateway-env.js';
import { startOpenssh } from '../lib/openssh-server.js';
import { mustRun, nodeFlags, spawnTracked, type Tracked } from '../lib/procs.js';
import { SftpCli, type SftpTarget } from '../lib/sftp-cli.js';
import { writeRandomFile } from '../lib/files.js';
import { cell, metMark, ratioCell, table, type SectionResult } from '../lib/report.js';
import { mbps, pairedRatios, rotate, summarize } from '../lib/stats.js';

type ServerName = 'gateway' | 'openssh' | 'ssh2';

interface Server {
  name: ServerName;
  target: SftpTarget;
  /** Remote directory uploads go to (with a trailing slash). */
  remoteDir: string;
  /** Remove what the last measurement stored. */
  clear(): Promise<void>;
}

/** The client's write size when told to use 255 KiB requests (what limits@openssh.com would announce). */
export const BIG_WRITES = ['-B', '261120'];
/** The 255 KiB-write diagnostic runs in the first runs only (time budget). */
const DIAGNOSTIC_RUNS = 3;
/**
 * `BENCH_SFTP_CASES=small`: only the many-small-files case (gateway, OpenSSH, OpenSSH with
 * `put -f` in every run, bare ssh2) — what issue 25's target 1 is measured with.
 */
const SMALL_ONLY = process.env.BENCH_SFTP_CASES === 'small';

async function emptyDir(dir: string): Promise<void> {
  for (const f of await fsp.readdir(dir)) await fsp.rm(path.join(dir, f), { force: true, recursive: true });
}

async function startBareServer(dir: string, clientPub: string): Promise<{ port: number; uploadDir: string; proc: Tracked }> {
  await fsp.mkdir(dir, { recursive: true });
  const hostKey = path.join(dir, 'host_ed25519');
  await mustRun('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', hostKey]);
  const uploadDir = path.join(dir, 'upload');
  await fsp.mkdir(uploadDir);
  // With pgw's heap flags: the library's ceiling, not a figure V8's defaults pull down.
  const proc = spawnTracked(process.execPath, [...nodeFlags(), '--import', 'tsx', path.join(ROOT, 'bench/lib/bare-sftp-server.ts'), hostKey, clientPub, uploadDir], {
    stdio: ['ignore', 'pipe', 'pipe'], cwd: ROOT,
  });
  let err = '';
  proc.child.stderr!.on('data', (d: Buffer) => {
    err = (err + d.toString('utf8')).slice(-2000);
  });
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    proc.child.stdout!.on('data', (d: Buffer) => {
      out += d.toString('utf8');
      const m = /\{"port":(\d+)\}/.exec(out);
      if (m) resolve(Number(m[1]));
    });
    void proc.exited.then(() => reject(new Error(`bare ssh2 server exited: ${err}`)));
    setTimeout(() => reject(new Error('bare ssh2 server did not start')), 30_000).unref();
  });
  return { port, uploadDir, proc };
}

export async function runSftpUpload(ctx: BenchContext): Promise<SectionResult> {
  const dir = await fsp.mkdtemp(path.join(ctx.root, 'sftp-'));
  const env = await GatewayEnv.create(ctx.root, 'sftp-gw');
  const partner = await env.addPartner('bench-sftp');
  await env.start('gateway');
  const openssh = await startOpenssh(path.join(dir, 'openssh'), partner.sshPub, CIPHER);
  const bare = await startBareServer(path.join(dir, 'ssh2'), partner.sshPub);
  const servers: Server[] = [
    {
      name: 'gateway', target: { port: env.sftpPort, user: partner.id, key: partner.sshKey }, remoteDir: '/inbox/',
      clear: () => emptyDir(env.dataDir.spoolDir),
    },
    { name: 'openssh', target: { port: openssh.port, user: openssh.user, key: partner.sshKey }, remoteDir: `${openssh.uploadDir}/`, clear: () => emptyDir(openssh.uploadDir) },
    { name: 'ssh2', target: { port: bare.port, user: partner.id, key: partner.sshKey }, remoteDir: '/', clear: () => emptyDir(bare.uploadDir) },
  ];

  ctx.log('sftp: writing input files');
  const files = path.join(dir, 'files');
  await fsp.mkdir(files);
  const sized: { label: string; bytes: number; file: string }[] = [];
  for (const s of SMALL_ONLY ? [] : ctx.sizes.sftp) {
    const file = path.join(files, `r${s.bytes}.bin.pgp`);
    await writeRandomFile(file, s.bytes);
    sized.push({ ...s, file });
  }
  const biggest = sized[sized.length - 1];

  const mbs: Record<string, Record<ServerName | 'gateway-B' | 'ssh2-B' | 'openssh-f', number[]>> = {};
  for (const s of sized) mbs[s.label] = { gateway: [], openssh: [], ssh2: [], 'gateway-B': [], 'ssh2-B': [], 'openssh-f': [] };
  const filesPerSec: Record<ServerName | 'openssh-f', number[]> = { gateway: [], openssh: [], ssh2: [], 'openssh-f': [] };

  // Warm-up (JIT, page cache, first ledger writes): not counted.
  for (const s of servers) {
    const c = await SftpCli.connect(s.target, CIPHER);
    const warm = sized[Math.min(1, sized.length - 1)]?.file ?? path.join(files, 'warmup.bin.pgp');
    if (!sized.length) await writeRandomFile(warm, ctx.sizes.smallFileBytes);
    await c.put(warm, `${s.remoteDir}warmup.bin.pgp`);
    await c.close();
    await s.clear();
  }

  for (let run = 0; run < ctx.runs; run++) {
    ctx.log(`sftp: run ${run + 1}/${ctx.runs}`);
    const clis = new Map<ServerName, SftpCli>();
    const big = new Map<ServerName, SftpCli>();
    for (const s of servers) clis.set(s.name, await SftpCli.connect(s.target, CIPHER));
    const withBig = run < DIAGNOSTIC_RUNS && biggest !== undefined;
    if (withBig) for (const s of servers) if (s.name !== 'openssh') big.set(s.name, await SftpCli.connect(s.target, CIPHER, BIG_WRITES));
    try {
      for (const [k, size] of sized.entries()) {
        for (const s of rotate(servers, run + k)) {
          const ms = await clis.get(s.name)!.put(size.file, `${s.remoteDir}u${run}-${k}.bin.pgp`);
          mbs[size.label]![s.name].push(mbps(size.bytes, ms));
          await s.clear();
        }
      }
      // What the gateway would do if it told clients its limits: the client's -B 261120.
      // And OpenSSH made as durable as the gateway: `put -f` sends fsync@openssh.com per file.
      for (const s of withBig ? rotate(servers, run) : []) {
        const biggest = sized[sized.length - 1]!;
        if (s.name === 'openssh') {
          const ms = await clis.get(s.name)!.command([`put -f ${biggest.file} ${s.remoteDir}f${run}.bin.pgp`]);
          mbs[biggest.label]!['openssh-f'].push(mbps(biggest.bytes, ms));
        } else {
          const ms = await big.get(s.name)!.put(biggest.file, `${s.remoteDir}b${run}.bin.pgp`);
          mbs[biggest.label]![`${s.name}-B` as 'gateway-B' | 'ssh2-B'].push(mbps(biggest.bytes, ms));
        }
        await s.clear();
      }
      // Many small files in one session: a fresh set each run (distinct content, so no duplicates).
      const small = path.join(files, `small-${run}`);
      await fsp.mkdir(small);
      for (let i = 0; i < ctx.sizes.smallFiles; i++) {
        await writeRandomFile(path.join(small, `s${String(i).padStart(4, '0')}.bin.pgp`), ctx.sizes.smallFileBytes);
      }
      for (const s of rotate(servers, run)) {
        const ms = await clis.get(s.name)!.command([`put ${small}/* ${s.remoteDir}`]);
        filesPerSec[s.name].push(ctx.sizes.smallFiles / (ms / 1000));
        await s.clear();
        if (s.name === 'openssh' && (withBig || SMALL_ONLY)) {
          const msf = await clis.get(s.name)!.command([`put -f ${small}/* ${s.remoteDir}`]);
          filesPerSec['openssh-f'].push(ctx.sizes.smallFiles / (msf / 1000));
          await s.clear();
        }
      }
      await fsp.rm(small, { recursive: true, force: true });
    } finally {
      for (const c of [...clis.values(), ...big.values()]) await c.close().catch(() => {});
    }
  }

  await openssh.stop();
  await bare.proc.stop();
  await env.close();
  await fsp.rm(dir, { recursive: true, force: true });

  const rows: string[][] = [];
  for (const s of sized) {
    const m = mbs[s.label]!;
    rows.push([
      s.label, cell(m.gateway), cell(m.openssh), cell(m.ssh2),
      ratioCell(pairedRatios(m.gateway, m.openssh)), ratioCell(pairedRatios(m.gateway, m.ssh2)),
    ]);
  }
  rows.push([
    `${ctx.sizes.smallFiles} × ${ctx.sizes.smallFileBytes / 1024} KiB, one session (files/s)`,
    cell(filesPerSec.gateway), cell(filesPerSec.openssh), cell(filesPerSec.ssh2),
    ratioCell(pairedRatios(filesPerSec.gateway, filesPerSec.openssh)), ratioCell(pairedRatios(filesPerSec.gateway, filesPerSec.ssh2)),
  ]);
  const targets: SectionResult['targets'] = sized.slice(-2).map((s) => {
    const r = summarize(pairedRatios(mbs[s.label]!.gateway, mbs[s.label]!.openssh));
    return { what: `SFTP ingest ${s.label} vs OpenSSH`, value: `${r.median.toFixed(2)}×`, target: '≥ 1.0×', met: r.n ? r.median >= 1 : null };
  });
  const smallF = summarize(pairedRatios(filesPerSec.gateway, filesPerSec['openssh-f']));
  targets.push({
    what: `SFTP ${ctx.sizes.smallFiles} × ${ctx.sizes.smallFileBytes / 1024} KiB files/s vs OpenSSH with fsync`,
    value: `${smallF.median.toFixed(2)}×`, target: '≥ 1.0×', met: smallF.n ? smallF.median >= 1 : null,
  });
  const mb = biggest ? mbs[biggest.label]! : null;
  const lines = [
    `Client: OpenSSH \`sftp -b -\`, \`-c ${CIPHER}\`, default request size (32 KiB unless the server announces larger) and 64 requests in flight. `
    + 'A timing starts when the `put` is written to sftp\'s stdin of an already-authenticated session and ends when sftp reads its next command, '
    + 'i.e. after the CLOSE status (handshake excluded). For the gateway that status means hashed, fsynced, renamed into the spool, in the ledger and enqueued. '
    + `MB/s = 10^6 bytes/s; ${ctx.runs} runs, servers measured back to back in a rotating order; ratio = gateway ÷ reference per run (median, min–max).`,
    '',
    ...table(['upload (MB/s unless noted)', 'gateway', 'OpenSSH internal-sftp', 'bare ssh2', 'gateway ÷ OpenSSH', 'gateway ÷ bare ssh2'], rows),
    '',
    `Diagnostics, first ${SMALL_ONLY ? ctx.runs : Math.min(DIAGNOSTIC_RUNS, ctx.runs)} runs (same sessions, same rotation): the ssh2 servers with the client told to send 255 KiB writes `
    + '(`sftp -B 261120`: what stock clients send to a server that announces `limits@openssh.com`), and OpenSSH made as durable as the gateway '
    + '(`put -f`: the client sends `fsync@openssh.com` before closing each file). Ratios per run against the default-settings figures above:',
    '',
    ...table(['diagnostic', 'value', '÷ same server, default', '÷ OpenSSH, default', 'gateway (default) ÷ this'], [
      ...(biggest && mb ? [
        [`gateway, 255 KiB writes, ${biggest.label} (MB/s)`, cell(mb['gateway-B']), ratioCell(pairedRatios(mb['gateway-B'], mb.gateway)), ratioCell(pairedRatios(mb['gateway-B'], mb.openssh)), '–'],
        [`bare ssh2, 255 KiB writes, ${biggest.label} (MB/s)`, cell(mb['ssh2-B']), ratioCell(pairedRatios(mb['ssh2-B'], mb.ssh2)), ratioCell(pairedRatios(mb['ssh2-B'], mb.openssh)), ratioCell(pairedRatios(mb.gateway, mb['ssh2-B']))],
        [`OpenSSH with fsync, ${biggest.label} (MB/s)`, cell(mb['openssh-f']), ratioCell(pairedRatios(mb['openssh-f'], mb.openssh)), ratioCell(pairedRatios(mb['openssh-f'], mb.openssh)), ratioCell(pairedRatios(mb.gateway, mb['openssh-f']))],
      ] : []),
      [`OpenSSH with fsync, ${ctx.sizes.smallFiles} × ${ctx.sizes.smallFileBytes / 1024} KiB (files/s)`, cell(filesPerSec['openssh-f']), ratioCell(pairedRatios(filesPerSec['openssh-f'], filesPerSec.openssh)), ratioCell(pairedRatios(filesPerSec['openssh-f'], filesPerSec.openssh)), ratioCell(pairedRatios(filesPerSec.gateway, filesPerSec['openssh-f']))],
    ]),
    '',
    ...targets.map((t) => `- Target ${t.what} ${t.target}: ${t.value} — ${metMark(t.met)}`),
  ];
  return { title: '1. SFTP upload throughput', lines, targets };
}
