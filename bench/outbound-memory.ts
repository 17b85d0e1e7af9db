/**
 * Peak RSS of the gateway process while an outbound document streams in (the promise: "a 50 MiB
 * document goes through with bounded memory"). One real `pgw start --role gateway`; the
 * document is POSTed with curl to the internal API; VmHWM (the kernel's high-water mark) of
 * the gateway is read after start-up, after a 1 MiB document and after each large one.
 *
 *   npx tsx bench/outbound-memory.ts [MiB=50]
 */
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { GatewayHarness } from '../test/helpers/gateway-harness.js';
import { curl } from '../test/helpers/https-client.js';
import { pgwCli } from '../test/helpers/key-tools.js';
import { readRss } from './lib/rss.js';

const mib = Number(process.argv[2] ?? 50);
const h = await GatewayHarness.create({ PGW_MAX_OUTBOUND_BYTES: String(1024 * 1024 * 1024) });
const work = await fsp.mkdtemp(path.join(os.tmpdir(), 'pgw-outbench-'));
try {
  const gw = await h.start('gateway');
  const p = await h.addPartner('kz-bench');
  const token = (await pgwCli(h, ['service', 'add', 'billing', '--scopes', 'outbound'])).stdout.trim();
  const send = async (name: string, bytes: number) => {
    const file = path.join(work, name);
    const fh = await fsp.open(file, 'w');
    for (let left = bytes; left > 0; left -= 1 << 20) await fh.write(randomBytes(Math.min(left, 1 << 20)));
    await fh.close();
    const t = Date.now();
    const r = await curl(h.tlsCertFile, ['-H', `Authorization: Bearer ${token}`, '-X', 'POST', '--data-binary', `@${file}`,
      `https://127.0.0.1:${h.internalPort}/internal/v1/partners/${p.id}/documents?name=${name}`]);
    if (r.httpCode !== 202) throw new Error(`${r.httpCode} ${r.stdout}`);
    const ms = Date.now() - t;
    await fsp.rm(file);
    const rss = (await readRss(gw.child.pid!))!;
    process.stdout.write(`${name}: ${(bytes / 1048576).toFixed(0)} MiB in ${ms} ms (${(bytes / 1048576 / (ms / 1000)).toFixed(1)} MiB/s); gateway VmRSS ${Math.round(rss.rssKiB / 1024)} MiB, VmHWM ${Math.round(rss.hwmKiB / 1024)} MiB\n`);
  };
  const idle = (await readRss(gw.child.pid!))!;
  process.stdout.write(`after start: VmRSS ${Math.round(idle.rssKiB / 1024)} MiB, VmHWM ${Math.round(idle.hwmKiB / 1024)} MiB\n`);
  await send('small.bin', 1 << 20);
  await send('large-1.bin', mib << 20);
  await send('large-2.bin', 2 * (mib << 20));
} finally {
  await h.cleanup();
  await fsp.rm(work, { recursive: true, force: true });
}
