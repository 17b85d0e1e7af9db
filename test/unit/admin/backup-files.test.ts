// test-pass: once
/**
 * What a backup takes of the data dir (admin/backup-files.ts), on a real directory tree:
 * in-flight and rebuilt folders skipped, a file holding the passphrase or the master key
 * left out and named, hard links stored once, links never followed, and a copy checked
 * against its manifest byte for byte. The end-to-end drill is backup-drill.test.ts.
 */
import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  FORMAT, checkDataFiles, copyDataDir, parseManifest, secretNeedles, type Manifest,
} from '../../../gateway/admin/backup-files.js';
import { isPgwError } from '../../../gateway/core/errors.js';

describe('backup: the data dir\'s files and the manifest', () => {
  let tmp: string;
  let data: string;
  let out: string;
  const passphrase = 'correct horse battery staple';
  const master = randomBytes(32);
  const needles = secretNeedles(passphrase, null, master);

  const put = async (rel: string, content: string | Buffer) => {
    await fsp.mkdir(path.join(data, path.dirname(rel)), { recursive: true });
    await fsp.writeFile(path.join(data, rel), content, { mode: 0o600 });
  };

  beforeEach(async () => {
    tmp = await fsp.mkdtemp(path.join(os.tmpdir(), 'pgw-bkf-'));
    data = path.join(tmp, 'data');
    out = path.join(tmp, 'out');
    await fsp.mkdir(out);
    await put('installation-id', 'abc\n');
    await put('keys/data-key.salt', randomBytes(16));
    await put('keys/ssh_host_ed25519_key', 'encrypted key');
    await put('keys/passphrase.txt', `${passphrase}\n`);
    await put('keys/master.key', `${master.toString('hex')}\n`);
    await put('spool/b-20260101-aaaaaaaaaaaa.pgp', randomBytes(3000));
    await put('acks/b-20260101-aaaaaaaaaaaa.v1.pgp', randomBytes(500));
    await fsp.mkdir(path.join(data, 'partners/kz-a/outbox'), { recursive: true });
    await fsp.link(path.join(data, 'acks/b-20260101-aaaaaaaaaaaa.v1.pgp'), path.join(data, 'partners/kz-a/outbox/reg.json.pgp.ack.pgp'));
    await fsp.symlink('/etc/passwd', path.join(data, 'partners/kz-a/outbox/planted.ack.pgp'));
    await put('partners/kz-a/staging/live/reg2.json.pgp.filepart', 'half an upload');
    await put('run/ports.json', '{}');
    await put('run/audit-anchor.json', '{}');
    await put('tmp/upload.part', 'in flight');
    await put('quarantine/b-20260101-aaaaaaaaaaaa.r1.sealed', 'decrypt run');
    await put('spool/.tmp-0011223344556677-x.pgp', 'temp name');
    await put('ledger.db', 'live sqlite file');
  });
  afterEach(async () => {
    await fsp.rm(tmp, { recursive: true, force: true });
  });

  async function backupNow(): Promise<Manifest> {
    const { files, excluded } = await copyDataDir(data, out, needles, new Set([path.join(data, 'ledger.db')]));
    return { format: FORMAT, takenAt: 'x', finishedAt: 'x', ledger: { dialect: 'sqlite', file: 'ledger.sqlite', size: 0, sha256: '' }, files, excluded };
  }

  it('takes keys and blobs; skips run/, tmp/, quarantine/, staging, temp names and the live ledger', async () => {
    const m = await backupNow();
    expect(m.files.map((f) => f.path).sort()).to.deep.equal([
      'acks/b-20260101-aaaaaaaaaaaa.v1.pgp', 'installation-id', 'keys/data-key.salt', 'keys/ssh_host_ed25519_key',
      'partners/kz-a/outbox/reg.json.pgp.ack.pgp', 'spool/b-20260101-aaaaaaaaaaaa.pgp',
    ]);
  });

  it('leaves out and names a file holding the passphrase or the master key, and a symlink', async () => {
    const m = await backupNow();
    expect(m.excluded).to.deep.include.members([
      { path: 'keys/master.key', reason: 'secret' }, { path: 'keys/passphrase.txt', reason: 'secret' },
      { path: 'partners/kz-a/outbox/planted.ack.pgp', reason: 'not a regular file' },
    ]);
    const copied = await fsp.readdir(path.join(out, 'data', 'keys'));
    expect(copied.sort()).to.deep.equal(['data-key.salt', 'ssh_host_ed25519_key']);
  });

  it('stores a hard-linked file once and lists the other name as its link', async () => {
    const m = await backupNow();
    const entry = m.files.find((f) => f.path === 'partners/kz-a/outbox/reg.json.pgp.ack.pgp')!;
    const blob = m.files.find((f) => f.path === 'acks/b-20260101-aaaaaaaaaaaa.v1.pgp')!;
    expect(entry.linkOf).to.equal(blob.path);
    expect(entry.sha256).to.equal(blob.sha256);
    expect(await fsp.stat(path.join(out, 'data', entry.path)).catch(() => null)).to.equal(null);
  });

  it('a copy matches its manifest; a changed, missing or extra file does not', async () => {
    const m = await backupNow();
    expect(await checkDataFiles(out, m)).to.deep.equal([]);
    const spool = path.join(out, 'data', 'spool/b-20260101-aaaaaaaaaaaa.pgp');
    const bytes = await fsp.readFile(spool);
    bytes[100] ^= 1;
    await fsp.writeFile(spool, bytes);
    await fsp.rm(path.join(out, 'data', 'keys/data-key.salt'));
    await fsp.writeFile(path.join(out, 'data', 'keys/extra'), 'x');
    expect((await checkDataFiles(out, m)).sort((a, b) => a.path.localeCompare(b.path))).to.deep.equal([
      { path: 'keys/data-key.salt', problem: 'missing' }, { path: 'keys/extra', problem: 'unlisted' },
      { path: 'spool/b-20260101-aaaaaaaaaaaa.pgp', problem: 'sha256' },
    ]);
  });

  it('a manifest whose paths leave the data dir is refused', async () => {
    const m = await backupNow();
    for (const bad of ['../evil', '/etc/cron.d/x', 'keys/../../x', 'a//b']) {
      const text = JSON.stringify({ ...m, files: [{ ...m.files[0]!, path: bad }] });
      expect(() => parseManifest(text), bad).to.throw().that.satisfies((e: unknown) => isPgwError(e, 'backup.invalid'));
    }
    const link = JSON.stringify({ ...m, files: [{ ...m.files[0]!, linkOf: '../../x' }] });
    expect(() => parseManifest(link)).to.throw().that.satisfies((e: unknown) => isPgwError(e, 'backup.invalid'));
    expect(parseManifest(JSON.stringify(m)).files).to.have.length(m.files.length);
  });
});
