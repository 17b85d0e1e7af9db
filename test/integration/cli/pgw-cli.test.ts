/** The `pgw` executable as an operator uses it: exit codes, one-line errors, --json. */
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import ssh2 from 'ssh2';
import { runPgw } from '../../helpers/pgw-cli.js';

const run = promisify(execFile);
const pgw = runPgw;

describe('pgw command line', function () {
  this.timeout(120_000);
  let dir: string;
  let env: Record<string, string>;
  before(async () => {
    dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'pgwcli-'));
    env = { PGW_DATA_DIR: path.join(dir, 'var'), PGW_KEY_PASSPHRASE: 'cli test passphrase' };
  });
  after(async () => {
    await fsp.rm(dir, { recursive: true, force: true });
  });

  it('documents every command with --help', async () => {
    const r = await pgw(['--help'], env);
    expect(r.code).to.equal(0);
    for (const c of ['init', 'start', 'demo', 'partner', 'keys', 'batches', 'audit']) expect(r.stdout).to.include(c);
    expect((await pgw(['partner', 'add', '--help'], env)).stdout).to.include('--ssh-key');
  });

  it('refuses to init without a passphrase, in one line, non-zero', async () => {
    const r = await pgw(['init'], { PGW_DATA_DIR: path.join(dir, 'nopass') });
    expect(r.code).to.not.equal(0);
    expect(r.stderr.trim().split('\n')).to.deep.equal(['pgw: key.passphrase_missing: set PGW_KEY_PASSPHRASE or PGW_KEY_PASSPHRASE_FILE']);
    expect(await fsp.stat(path.join(dir, 'nopass', 'ledger.db')).catch(() => null)).to.equal(null);
  });

  it('reports every bad setting at once', async () => {
    const r = await pgw(['partner', 'list'], { ...env, PGW_SFTP_PORT: 'x', PGW_REDIS_URL: 'http://x' });
    expect(r.code).to.not.equal(0);
    expect(r.stderr).to.include('PGW_SFTP_PORT').and.include('PGW_REDIS_URL');
  });

  it('init is idempotent, keys are 0600, and a wrong passphrase is refused', async () => {
    const first = JSON.parse((await pgw(['init', '--json'], env)).stdout) as { created: string[]; gatewayKeys: string[] };
    expect(first.created).to.include('gateway OpenPGP key');
    const second = JSON.parse((await pgw(['init', '--json'], env)).stdout) as { created: string[]; gatewayKeys: string[] };
    expect(second.created).to.deep.equal([]);
    expect(second.gatewayKeys).to.deep.equal(first.gatewayKeys);
    for (const f of ['ssh_host_ed25519_key', 'ssh_host_rsa_key', 'tls-key.pem']) {
      expect((await fsp.stat(path.join(dir, 'var', 'keys', f))).mode & 0o777, f).to.equal(0o600);
    }
    for (const f of ['ssh_host_ed25519_key', 'ssh_host_rsa_key']) {
      const parsed = ssh2.utils.parseKey(await fsp.readFile(path.join(dir, 'var', 'keys', f)));
      expect(parsed, `${f} cannot be read without the passphrase`).to.be.instanceOf(Error);
      expect(String((parsed as Error).message)).to.match(/encrypted/i);
    }
    expect(await fsp.readFile(path.join(dir, 'var', 'keys', 'tls-key.pem'), 'utf8')).to.match(/^-----BEGIN ENCRYPTED PRIVATE KEY-----/);
    const wrong = await pgw(['keys', 'gateway', 'check'], { ...env, PGW_KEY_PASSPHRASE: 'not the passphrase' });
    expect(wrong.stderr).to.match(/^pgw: key\.passphrase_wrong/);
    const exported = await pgw(['keys', 'gateway', 'export'], env);
    expect(exported.stdout).to.match(/^-----BEGIN PGP PUBLIC KEY BLOCK-----/);
    expect(exported.stdout).not.to.include('PRIVATE');
  });

  it('registers a partner and lists it as JSON; the action is audited', async () => {
    await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', path.join(dir, 'k')]);
    const add = await pgw(['partner', 'add', 'kz-cli', '--name', 'Kraamzorg CLI', '--ssh-key', path.join(dir, 'k.pub')], env);
    expect(add.code, add.stderr).to.equal(0);
    expect(add.stderr).to.include('no PGP key');
    const list = JSON.parse((await pgw(['partner', 'list', '--json'], env)).stdout) as { id: string; status: string }[];
    expect(list.map((p) => [p.id, p.status])).to.deep.equal([['kz-cli', 'active']]);
    expect((await pgw(['partner', 'add', 'kz-cli', '--name', 'again'], env)).stderr).to.match(/^pgw: partner\.exists/);
    expect((await pgw(['partner', 'disable', 'kz-cli'], env)).code).to.equal(0);
    const audit = await pgw(['audit', 'verify'], env);
    expect(audit.stdout).to.match(/ok: [3-9] audit events/);
  });

  it('issues API tokens once, lists them without secrets, revokes them; webhooks must be https', async () => {
    const issued = await pgw(['partner', 'token', 'kz-cli', '--label', 'export job'], env);
    expect(issued.code, issued.stderr).to.equal(0);
    const token = issued.stdout.trim();
    expect(token).to.match(/^pgw_[a-z2-9]{12}_[A-Za-z0-9_-]{43}$/);
    const id = token.split('_')[1]!;
    const listed = await pgw(['partner', 'token', 'kz-cli', '--list', '--json'], env);
    const rows = JSON.parse(listed.stdout) as { id: string; label: string; revoked_at: string | null }[];
    expect(rows.map((r) => [r.id, r.label, r.revoked_at])).to.deep.equal([[id, 'export job', null]]);
    // the secret is everything after `pgw_<id>_`; it may itself contain `_` (base64url)
    expect(listed.stdout).to.not.include(token.slice(`pgw_${id}_`.length));
    expect(listed.stdout).to.not.include('secret_hash');
    expect((await pgw(['partner', 'token', 'kz-cli', '--revoke', id], env)).code).to.equal(0);
    expect((await pgw(['partner', 'token', 'kz-cli', '--revoke', id], env)).stderr).to.match(/^pgw: token\.not_found/);
    const bad = await pgw(['partner', 'set', 'kz-cli', '--webhook', 'http://hooks.example/x'], env);
    expect(bad.code).to.not.equal(0);
    expect(bad.stderr.trim()).to.match(/^pgw: webhook\.url_invalid: /);
    const set = await pgw(['partner', 'set', 'kz-cli', '--webhook', 'https://hooks.example/x'], env);
    expect(set.code, set.stderr).to.equal(0);
    expect(set.stderr).to.include('not in PGW_WEBHOOK_ALLOWED_HOSTS');
    const audit = await pgw(['audit', 'verify'], env);
    expect(audit.code).to.equal(0);
  });

  it('pgw demo prints a decrypted, verified ack', async () => {
    const r = await pgw(['demo', '--json'], {});
    expect(r.code, r.stderr).to.equal(0);
    const ack = JSON.parse(r.stdout) as { type: string; status: string; records: { total: number; accepted: number } };
    expect(ack).to.deep.include({ type: 'pgw.ack', status: 'partially_accepted' });
    expect(ack.records).to.deep.include({ total: 5, accepted: 4 });
  });
});
