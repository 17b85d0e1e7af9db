/**
 * What another local user, a terminal or a log collector can see: a config file with a
 * syntax error must not echo the passphrase beside it (`pgw` stderr), and the data dir and
 * the SQLite ledger (with its -wal/-shm) are owner-only whatever the umask the operator's
 * shell or service manager gives — also a data dir an older version left open.
 */
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { runPgw } from '../helpers/pgw-cli.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const PGW = path.join(ROOT, 'bin/pgw.js');
const SECRET = 'hunter2-Local-Exposure-Canary';
const modeOf = async (p: string) => ((await fsp.stat(p)).mode & 0o777).toString(8);

interface Result { code: number; stdout: string; stderr: string }

/** Run `cmd args` under `umask 022` (a common shell and service-manager default). */
async function withUmask022(cmd: string, args: string[], env: Record<string, string>): Promise<Result> {
  try {
    const r = await promisify(execFile)('/bin/sh', ['-c', 'umask 022 && exec "$0" "$@"', cmd, ...args], {
      env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env }, timeout: 90_000,
    });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

describe('security: local exposure (config errors, file modes under a permissive umask)', function () {
  this.timeout(120_000);
  let dir: string;
  before(async () => {
    dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'pgw-local-'));
  });
  after(async () => {
    await fsp.rm(dir, { recursive: true, force: true });
  });

  it('a config file with a syntax error next to the passphrase: pgw names the file and a position, never the passphrase', async () => {
    for (const [i, text] of [
      `{\n  "dataDir": "${dir}/d",\n  "keyPassphrase": ${SECRET}\n}\n`, // V8 quotes the text around an unexpected token
      `{ "keyPassphrase": "${SECRET}" "logLevel": "info" }`,
      `{ "keyPassphrase": "${SECRET}\n" }`,
    ].entries()) {
      const file = path.join(dir, `bad-${i}.json`);
      await fsp.writeFile(file, text, { mode: 0o600 });
      const r = await runPgw(['--config', file, 'init'], {});
      expect(r.code, r.stderr).to.not.equal(0);
      expect(`${r.stdout}${r.stderr}`, r.stderr).not.to.include('hunter2');
      expect(r.stderr).to.include('config.invalid').and.include(file).and.match(/syntax error at line \d+, column \d+/);
    }
  });

  it('pgw init under umask 022 narrows an existing 0755 data dir and its folders to 0700 (logged once) and makes the ledger 0600', async () => {
    const data = path.join(dir, 'data');
    const open = [data, path.join(data, 'spool'), path.join(data, 'partners'), path.join(data, 'partners', 'p1'), path.join(data, 'partners', 'p1', 'outbox')];
    for (const d of open) await fsp.mkdir(d, { mode: 0o755 });
    for (const d of open) await fsp.chmod(d, 0o755); // whatever this process's umask is
    await fsp.writeFile(path.join(data, 'partners', 'p1', 'outbox', 'old-ack.pgp'), 'x', { mode: 0o600 });
    const r = await withUmask022(process.execPath, [PGW, 'init'], { PGW_DATA_DIR: data, PGW_KEY_PASSPHRASE: 'a long enough passphrase' });
    expect(r.code, r.stderr).to.equal(0);
    for (const d of open) expect(await modeOf(d), d).to.equal('700');
    for (const d of ['keys', 'run', 'tmp', 'payload', 'acks']) expect(await modeOf(path.join(data, d)), d).to.equal('700');
    const narrowedLines = r.stderr.split('\n').filter((l) => l.includes('narrowed to 0700'));
    expect(narrowedLines, r.stderr).to.have.length(1);
    expect(narrowedLines[0]).to.include('partners/p1/outbox (was 755)');
    expect(await modeOf(path.join(data, 'ledger.db'))).to.equal('600');
    // A second start finds nothing to narrow and says nothing about it.
    const again = await withUmask022(process.execPath, [PGW, 'init'], { PGW_DATA_DIR: data, PGW_KEY_PASSPHRASE: 'a long enough passphrase' });
    expect(again.code, again.stderr).to.equal(0);
    expect(again.stderr).not.to.include('narrowed');
  });

  it('the SQLite ledger, its -wal and -shm are 0600 under umask 022 while in use, and an older 0644 ledger is narrowed', async () => {
    const file = path.join(dir, 'ledger-umask', 'ledger.db');
    const script = path.join(dir, 'open-ledger.mts');
    // A child process: the umask is per process, and this one must not change the test runner's.
    await fsp.writeFile(script, [
      `import { Ledger } from ${JSON.stringify(path.join(ROOT, 'gateway/core/ledger/index.ts'))};`,
      `import { silentLogger } from ${JSON.stringify(path.join(ROOT, 'gateway/core/logger.ts'))};`,
      'import { statSync } from "node:fs";',
      'process.umask(0o022);',
      `const file = ${JSON.stringify(file)};`,
      'const ledger = await Ledger.open(`sqlite:${file}`, silentLogger);',
      'await ledger.partners.create({ id: `p${process.pid}`, name: "P" });',
      'const modes = Object.fromEntries(["", "-wal", "-shm"].map((s) => [s || "db", (statSync(file + s).mode & 0o777).toString(8)]));',
      'await ledger.close();',
      'process.stdout.write(JSON.stringify(modes));',
    ].join('\n'));
    const run = () => withUmask022(process.execPath, ['--import', 'tsx', script], {});
    const first = await run();
    expect(first.code, first.stderr).to.equal(0);
    expect(JSON.parse(first.stdout)).to.deep.equal({ db: '600', '-wal': '600', '-shm': '600' });
    await fsp.chmod(file, 0o644);
    const second = await run();
    expect(second.code, second.stderr).to.equal(0);
    expect(JSON.parse(second.stdout)).to.deep.equal({ db: '600', '-wal': '600', '-shm': '600' });
  });
});
