/**
 * A first run on a machine where Redis or PostgreSQL do not run: `pgw demo` starts its own
 * Redis or says in one line what to install; `scripts/test-services.sh` (what `npm test`
 * runs first) starts throw-away servers on private ports and removes them, or says in one
 * line what to install. Real redis-server, PostgreSQL, OpenSSH-free (the demo's own client).
 */
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { promises as fsp, readFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { runPgw } from '../../helpers/pgw-cli.js';
import { freePort } from '../../helpers/fault-tools.js';

const run = promisify(execFile);
const ROOT = path.resolve(import.meta.dirname, '../../..');

/** True when something accepts a connection on 127.0.0.1:port. */
function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    s.once('connect', () => { s.destroy(); resolve(true); });
    s.once('error', () => resolve(false));
  });
}

/** A PATH directory with every command of this machine's PATH except redis-*. */
async function pathWithoutRedis(dir: string): Promise<string> {
  const farm = path.join(dir, 'bin');
  await fsp.mkdir(farm);
  for (const d of (process.env.PATH ?? '').split(':').filter(Boolean)) {
    for (const name of await fsp.readdir(d).catch(() => [] as string[])) {
      if (name.startsWith('redis-')) continue;
      await fsp.symlink(path.join(d, name), path.join(farm, name)).catch(() => {}); // first in PATH wins
    }
  }
  return farm;
}

describe('first run without Redis or PostgreSQL running', function () {
  this.timeout(180_000);
  let dir: string;
  before(async () => {
    dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'pgw-first-run-'));
  });
  after(async () => {
    await fsp.rm(dir, { recursive: true, force: true });
  });

  it('pgw --version prints the package version', async () => {
    const r = await runPgw(['--version'], {});
    expect(r.code, r.stderr).to.equal(0);
    const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string };
    expect(r.stdout.trim()).to.equal(pkg.version);
  });

  it('pgw demo with nothing at PGW_REDIS_URL runs its own redis-server, verifies the ack and removes it all', async () => {
    const nothing = await freePort();
    const r = await runPgw(['demo'], { PGW_REDIS_URL: `redis://127.0.0.1:${nothing}` }, 120_000);
    expect(r.code, r.stderr).to.equal(0);
    const started = /started a private redis-server on 127\.0\.0\.1:(\d+)/.exec(r.stdout);
    expect(started, r.stdout).to.not.equal(null);
    expect(r.stdout).to.match(/ack decrypted; signature verified \(gateway key 0x[0-9A-F]{16}\)/);
    // The rest of the batch's life: the account service's outcome, the signed result, one document.
    expect(r.stdout).to.match(/account service: 1 handoff ready, fetched 4 accepted records of b-\S+ over HTTPS/);
    expect(r.stdout).to.match(/partner: \/outbox\/\S+\.json\.pgp\.result\.pgp verified \(gateway key 0x[0-9A-F]{16}\): pgw\.result with 4 outcomes \(3 created, 0 exists, 1 failed\)/);
    expect(r.stdout).to.match(/partner: outbound document \/outbox\/welkom-demo-kraamzorg\.txt\.pgp verified \(gateway key 0x[0-9A-F]{16}\)/);
    const ack = JSON.parse(r.stdout.slice(r.stdout.indexOf('\n{') + 1)) as { type: string; records: { total: number; accepted: number } };
    expect(ack.type).to.equal('pgw.ack');
    expect(ack.records).to.deep.include({ total: 5, accepted: 4 });
    // Gone afterwards: the private Redis and the demo's directory (its Redis dir inside).
    expect(await listening(Number(started![1]))).to.equal(false);
    const demoDir = /demo data dir: (\S+)\/data /.exec(r.stdout)![1]!;
    expect(await fsp.stat(demoDir).catch(() => null)).to.equal(null);
  });

  it('pgw demo without redis-server on the PATH stops within 10 s with one line naming the fix', async () => {
    const empty = path.join(dir, 'empty-path');
    await fsp.mkdir(empty);
    const nothing = await freePort();
    const r = await runPgw(['demo'], { PATH: empty, PGW_REDIS_URL: `redis://127.0.0.1:${nothing}` }, 10_000);
    expect(r.code, `killed after 10 s? ${r.stderr}`).to.equal(1);
    expect(r.stdout).to.equal('');
    expect(r.stderr.trim().split('\n')).to.deep.equal([
      `pgw: redis.unreachable: nothing answers at redis://127.0.0.1:${nothing} and redis-server is not installed: apt-get install redis-server, or set PGW_REDIS_URL to a running Redis`,
    ]);
  });

  describe('scripts/test-services.sh (npm test\'s servers)', () => {
    it('starts throw-away Redis and PostgreSQL on private ports when none answer, exports their URLs, and removes them', async () => {
      // As root, PostgreSQL runs as the postgres user, which must reach its directory in there.
      await fsp.chmod(dir, 0o711);
      const tmp = path.join(dir, 'services-tmp');
      await fsp.mkdir(tmp, { mode: 0o711 });
      const [redisPort, pgPort] = [await freePort(), await freePort()];
      const inner = 'echo "REDIS=$PGW_TEST_REDIS_URL"; echo "PG=$PGW_TEST_POSTGRES_ADMIN_URL"; redis-cli -u "$PGW_TEST_REDIS_URL" ping; psql "$PGW_TEST_POSTGRES_ADMIN_URL" -Atc "select 40 + 2"';
      const r = await run('bash', [path.join(ROOT, 'scripts', 'test-services.sh'), 'bash', '-c', inner], {
        env: {
          PATH: process.env.PATH, HOME: process.env.HOME, TMPDIR: tmp,
          PGW_TEST_REDIS_URL: `redis://127.0.0.1:${redisPort}`, PGW_TEST_POSTGRES_ADMIN_URL: `postgres://postgres@127.0.0.1:${pgPort}/test`,
        },
        timeout: 120_000,
      });
      const redisUrl = /^REDIS=redis:\/\/127\.0\.0\.1:(\d+)$/m.exec(r.stdout);
      const pgUrl = /^PG=postgres:\/\/postgres@127\.0\.0\.1:(\d+)\/test$/m.exec(r.stdout);
      expect(redisUrl, r.stdout).to.not.equal(null);
      expect(pgUrl, r.stdout).to.not.equal(null);
      expect(r.stdout).to.match(/^PONG$/m).and.match(/^42$/m);
      // Stopped and removed when the command ended.
      expect(await listening(Number(redisUrl![1]))).to.equal(false);
      expect(await listening(Number(pgUrl![1]))).to.equal(false);
      expect(await fsp.readdir(tmp)).to.deep.equal([]);
    });

    it('without redis-server stops at once, in one line naming the package, and runs nothing', async () => {
      const farm = await pathWithoutRedis(dir);
      const nothing = await freePort();
      const marker = path.join(dir, 'ran');
      const r = await run('bash', [path.join(ROOT, 'scripts', 'test-services.sh'), 'touch', marker], {
        env: { PATH: farm, HOME: process.env.HOME, PGW_TEST_REDIS_URL: `redis://127.0.0.1:${nothing}`, PGW_TEST_DATABASES: 'sqlite' },
        timeout: 10_000,
      }).then(() => null, (err: { code: number; stderr: string }) => err);
      expect(r?.code).to.equal(1);
      expect(r!.stderr.trim().split('\n')).to.deep.equal([
        `npm test: nothing answers at redis://127.0.0.1:${nothing} and redis-server is not installed: apt-get install redis-server (or set PGW_TEST_REDIS_URL)`,
      ]);
      expect(await fsp.stat(marker).catch(() => null)).to.equal(null);
    });
  });
});
