/** The key-lifecycle commands as an operator uses them: one-line errors with codes, --json, audit. */
import { expect } from 'chai';
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { runPgw } from '../../helpers/pgw-cli.js';

describe('pgw keys / audit commands (issue 5)', function () {
  this.timeout(180_000);
  let dir: string;
  let env: Record<string, string>;
  const pgw = (args: string[]) => runPgw(args, env);

  before(async () => {
    dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'pgwkcli-'));
    env = { PGW_DATA_DIR: path.join(dir, 'var'), PGW_KEY_PASSPHRASE: 'cli test passphrase' };
    expect((await pgw(['init'])).code).to.equal(0);
  });
  after(async () => {
    await fsp.rm(dir, { recursive: true, force: true });
  });

  it('documents the new commands', async () => {
    expect((await pgw(['keys', 'gateway', '--help'])).stdout).to.include('rotate').and.include('retire');
    expect((await pgw(['keys', 'gateway', 'rotate', '--help'])).stdout).to.include('--activate-at').and.include('--overlap-days');
    expect((await pgw(['keys', 'partner', '--help'])).stdout).to.include('revoke').and.include('list');
    expect((await pgw(['partner', 'ssh-key', '--help'])).stdout).to.include('add').and.include('remove');
    expect((await pgw(['audit', '--help'])).stdout).to.include('list').and.include('verify');
  });

  it('rotate: a next key is listed and exported; a second rotation and bad input fail in one line with a code', async () => {
    const before = (await pgw(['keys', 'gateway', 'export'])).stdout;
    const r = await pgw(['keys', 'gateway', 'rotate', '--overlap-days', '2', '--json']);
    expect(r.code, r.stderr).to.equal(0);
    const { next, activateAt, retiring } = JSON.parse(r.stdout) as { next: string; activateAt: string; retiring: { retireAt: string }[] };
    expect(Date.parse(retiring[0]!.retireAt) - Date.parse(activateAt)).to.equal(2 * 86_400_000);
    const listed = JSON.parse((await pgw(['keys', 'list', '--json'])).stdout) as { keys: { fingerprint: string; state: string }[] };
    expect(listed.keys.map((k) => k.state).sort()).to.deep.equal(['active', 'next']);
    expect(listed.keys.find((k) => k.fingerprint === next)?.state).to.equal('next');
    const after = (await pgw(['keys', 'gateway', 'export'])).stdout;
    expect(after.startsWith(before.trim())).to.equal(true);
    expect(after.match(/BEGIN PGP PUBLIC KEY BLOCK/g)).to.have.length(2);

    for (const [args, code] of [
      [['keys', 'gateway', 'rotate'], 'key.rotation_invalid'],
      [['keys', 'gateway', 'rotate', '--activate-at', 'soon'], 'config.invalid'],
      [['keys', 'gateway', 'retire', '0xDEADBEEFDEADBEEF'], 'key.not_found'],
      [['partner', 'ssh-key', 'remove', 'nobody', 'SHA256:x'], 'partner.not_found'],
      [['keys', 'partner', 'revoke', 'nobody', '0xDEADBEEFDEADBEEF'], 'partner.not_found'],
    ] as const) {
      const e = await pgw([...args]);
      expect(e.code, args.join(' ')).to.not.equal(0);
      expect(e.stderr.trim().split('\n'), args.join(' ')).to.have.length(1);
      expect(e.stderr, args.join(' ')).to.match(new RegExp(`^pgw: ${code.replace('.', '\\.')}: `));
    }
  });

  it('audit list shows the rotation with its actor; verify reports an intact chain with its head', async () => {
    const list = JSON.parse((await pgw(['audit', 'list', '--json'])).stdout) as { seq: number; action: string; actor: string; detail: unknown }[];
    expect(list.map((e) => e.action)).to.deep.equal(['gateway_key.rotated', 'gateway_key.created']);
    expect(list[0]!.actor).to.match(/^cli:/);
    const v = await pgw(['audit', 'verify', '--json']);
    expect(v.code).to.equal(0);
    expect(JSON.parse(v.stdout)).to.include({ ok: true, events: 2 });
  });

  it('audit verify: deleting the newest event (a valid shorter chain) is caught by the anchor of the last run', async () => {
    expect((await pgw(['audit', 'verify'])).code).to.equal(0); // anchors the current head
    const newest = (JSON.parse((await pgw(['audit', 'list', '--json', '--limit', '1'])).stdout) as { seq: number }[])[0]!.seq;
    const db = new Database(path.join(dir, 'var', 'ledger.db'));
    try {
      db.prepare('delete from audit_events where seq = ?').run(newest);
    } finally {
      db.close();
    }
    const r = await pgw(['audit', 'verify']);
    expect(r.code).to.not.equal(0);
    expect(r.stderr.trim()).to.match(new RegExp(`^pgw: audit\\.broken: audit chain broken at event ${newest}: it was the newest event at the last verification`));
  });
});
