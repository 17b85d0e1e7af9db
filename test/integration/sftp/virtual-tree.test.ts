/**
 * The partner's virtual tree: what is listed, what can be read, and every way out of it
 * that must be refused (OpenSSH `sftp` where it can express the request, ssh2 otherwise).
 */
import { expect } from 'chai';
import { createHash } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import type ssh2 from 'ssh2';
import { SftpHarness, GATEWAY_KEYS_TEXT, type TestPartner } from '../../helpers/sftp-harness.js';

const STATUS = { NO_SUCH_FILE: 2, PERMISSION_DENIED: 3, FAILURE: 4, OP_UNSUPPORTED: 8 };

type Cb<T> = (err: Error | null | undefined, v?: T) => void;
function call<T>(fn: (cb: Cb<T>) => void): Promise<{ err: (Error & { code?: number }) | null; value: T | undefined }> {
  return new Promise((resolve) => fn((err, value) => resolve({ err: (err as Error & { code?: number }) ?? null, value })));
}

describe('sftp virtual tree', function () {
  let h: SftpHarness;
  let p: TestPartner;
  let other: TestPartner;
  let client: ssh2.Client;
  let sftp: ssh2.SFTPWrapper;

  before(async () => {
    h = await SftpHarness.start({ config: { limits: { openFilesPerConnection: 6 } } });
    p = await h.addPartner('acme');
    other = await h.addPartner('other-org');
    ({ client, sftp } = await h.sftpClient(p));
  });
  after(async () => {
    client?.end();
    await h?.close();
  });

  it('/ lists exactly inbox, keys and outbox', async () => {
    const { err, value } = await call<ssh2.FileEntry[]>((cb) => sftp.readdir('/', cb));
    expect(err).to.equal(null);
    expect(value!.map((e) => e.filename).sort()).to.deep.equal(['inbox', 'keys', 'outbox']);
    const r = await h.sftp(p, ['ls -1 /']);
    expect(r.code, r.stderr).to.equal(0);
    const names = r.stdout.split('\n').filter((l) => l && !l.startsWith('sftp>')).map((l) => path.posix.basename(l.trim()));
    expect(names).to.deep.equal(['inbox', 'keys', 'outbox']);
  });

  it('virtual folders show the partner\'s registration time, not 1 Jan 1970', async () => {
    const registered = Math.floor(new Date((await h.ledger.partners.get('acme'))!.created_at).getTime() / 1000);
    expect(registered).to.be.greaterThan(0);
    const { value: root } = await call<ssh2.FileEntry[]>((cb) => sftp.readdir('/', cb));
    const { value: outbox } = await call<ssh2.FileEntry[]>((cb) => sftp.readdir('/outbox', cb));
    const { value: keys } = await call<ssh2.FileEntry[]>((cb) => sftp.readdir('/keys', cb));
    for (const e of [...root!, outbox!.find((x) => x.filename === 'test')!, keys!.find((x) => x.filename === 'incoming')!]) {
      expect(e.attrs.mtime, e.filename).to.equal(registered);
      expect(e.longname, e.filename).not.to.include('1970');
    }
    for (const dir of ['/', '/inbox', '/inbox/test', '/outbox/test', '/keys']) {
      const { value: st } = await call<ssh2.Stats>((cb) => sftp.stat(dir, cb));
      expect(st!.mtime, dir).to.equal(registered);
    }
    const r = await h.sftp(p, ['ls -l /', 'ls -l /inbox']);
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stdout).to.match(/^d.*inbox$/m).and.not.include('1970');
  });

  it('get /keys/gateway.asc returns the gateway public keys', async () => {
    const r = await h.sftp(p, ['get /keys/gateway.asc gw.asc']);
    expect(r.code, r.stderr).to.equal(0);
    expect(await fsp.readFile(path.join(h.dir, 'local', 'gw.asc'), 'utf8')).to.equal(GATEWAY_KEYS_TEXT);
    const put = await h.sftp(p, ['put gw.asc /keys/gateway.asc']);
    expect(put.code).to.not.equal(0);
  });

  it('cd .. never leaves the root, and realpath clamps', async () => {
    const r = await h.sftp(p, ['cd /inbox', 'cd ../../..', 'pwd', 'cd ..', 'pwd']);
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stdout.match(/Remote working directory: (.*)/g)).to.deep.equal(['Remote working directory: /', 'Remote working directory: /']);
    for (const [input, want] of [['.', '/'], ['..', '/'], ['/inbox/../../..', '/'], ['inbox/./test/..', '/inbox'], ['/../etc/passwd', '/etc/passwd']]) {
      const { value } = await call<string>((cb) => sftp.realpath(input!, cb));
      expect(value, input).to.equal(want);
    }
    // …and the clamped path is virtual: there is no /etc here.
    const { err } = await call((cb) => sftp.stat('/../etc/passwd', cb));
    expect(err?.code).to.equal(STATUS.NO_SUCH_FILE);
  });

  it('refuses writes outside /inbox: ../x.pgp, /x.pgp, /outbox/x.pgp, /keys/x.pgp', async () => {
    await h.localFile('x.pgp', 'data');
    const before = (await h.batches('acme')).length;
    for (const cmds of [['cd /inbox', 'put x.pgp ../x.pgp'], ['put x.pgp /x.pgp'], ['put x.pgp /outbox/x.pgp'], ['put x.pgp /keys/x.pgp'], ['put x.pgp /inbox/test/deeper/x.pgp']]) {
      const r = await h.sftp(p, cmds);
      expect(r.code, cmds.join('; ')).to.not.equal(0);
      expect(r.stderr, cmds.join('; ')).to.match(/Permission denied|No such file/);
    }
    expect((await h.batches('acme')).length).to.equal(before);
    expect(await fsp.readdir(h.dataDir.outboxFor('acme', 'live'))).to.deep.equal(['test']);
  });

  it('refuses mkdir, rmdir, symlink, hard links and renames other than temp → final', async () => {
    for (const cmd of ['mkdir /inbox/d', 'mkdir /d', 'rmdir /inbox/test', 'rmdir /outbox', 'ln -s /inbox/x.pgp /inbox/l.pgp', 'ln /keys/gateway.asc /inbox/h.pgp', 'rename /keys/gateway.asc /inbox/g.pgp', 'rename /outbox /x']) {
      const r = await h.sftp(p, [cmd]);
      expect(r.code, cmd).to.not.equal(0);
    }
    const rl = await call((cb) => sftp.readlink('/keys/gateway.asc', cb));
    expect(rl.err?.code).to.equal(STATUS.OP_UNSUPPORTED);
  });

  it('inbox files cannot be read back; final names cannot be deleted', async () => {
    await h.localFile('secret.pgp', 'partner bytes');
    expect((await h.sftp(p, ['put secret.pgp /inbox/secret.pgp'])).code).to.equal(0);
    const open = await call<Buffer>((cb) => sftp.open('/inbox/secret.pgp', 'r', cb));
    expect(open.err?.code).to.equal(STATUS.PERMISSION_DENIED);
    const rm = await call((cb) => sftp.unlink('/inbox/secret.pgp', cb));
    expect(rm.err?.code).to.equal(STATUS.PERMISSION_DENIED);
  });

  it('refuses NUL, backslash, non-ASCII and over-long paths', async () => {
    for (const bad of ['/inbox/a\u0000b.pgp', '/inbox/a\\..\\b.pgp', '/inbox/\uff0e\uff0e/x.pgp', '/inbox/caf\u00e9.pgp', `/inbox/${'a'.repeat(1100)}.pgp`, '/inbox/a\r\nb.pgp']) {
      const w = await call<Buffer>((cb) => sftp.open(bad, 'w', cb));
      expect(w.err?.code, JSON.stringify(bad)).to.be.oneOf([STATUS.PERMISSION_DENIED, STATUS.NO_SUCH_FILE]);
      const s = await call((cb) => sftp.stat(bad, cb));
      expect(s.err?.code, JSON.stringify(bad)).to.equal(STATUS.NO_SUCH_FILE);
    }
    expect(await h.tmpFiles()).to.deep.equal([]);
  });

  it('caps open handles per connection (limits.open_files) and frees them on close', async () => {
    const handles: Buffer[] = [];
    for (let i = 0; i < 6; i++) {
      const r = await call<Buffer>((cb) => sftp.open('/keys/gateway.asc', 'r', cb));
      expect(r.err, `open #${i + 1}`).to.equal(null);
      handles.push(r.value!);
    }
    const over = await call<Buffer>((cb) => sftp.open('/keys/gateway.asc', 'r', cb));
    expect(over.err?.message).to.match(/^limits\.open_files: /);
    const dir = await call<Buffer>((cb) => sftp.opendir('/', cb));
    expect(dir.err?.message).to.match(/^limits\.open_files: /);
    for (const hd of handles) expect((await call((cb) => sftp.close(hd, cb))).err).to.equal(null);
    const again = await call<Buffer>((cb) => sftp.open('/keys/gateway.asc', 'r', cb));
    expect(again.err).to.equal(null);
    await call((cb) => sftp.close(again.value!, cb));
  });

  it('handles are opaque 4-byte ids; a forged or closed handle is refused', async () => {
    const r = await call<Buffer>((cb) => sftp.open('/keys/gateway.asc', 'r', cb));
    expect(r.value).to.have.length(4);
    await call((cb) => sftp.close(r.value!, cb));
    const read = await call((cb) => sftp.read(r.value!, Buffer.alloc(10), 0, 10, 0, cb));
    expect(read.err?.code).to.equal(STATUS.FAILURE);
    const forged = await call((cb) => sftp.close(Buffer.from([0, 0, 0, 0]), cb));
    expect(forged.err?.code).to.equal(STATUS.FAILURE);
  });

  describe('outbox', () => {
    const ack = 'a.json.pgp.ack.pgp';
    const ackBytes = Buffer.from('-----BEGIN PGP MESSAGE-----\nack\n-----END PGP MESSAGE-----\n');

    before(async () => {
      const out = h.dataDir.outboxFor('acme', 'live');
      await fsp.writeFile(path.join(out, ack), ackBytes);
      await fsp.writeFile(path.join(out, 'notes.txt'), 'not an ack');
      await fsp.writeFile(path.join(h.dir, 'outside-secret.pgp.ack.pgp'), 'SECRET OUTSIDE THE OUTBOX');
      await fsp.symlink(path.join(h.dir, 'outside-secret.pgp.ack.pgp'), path.join(out, 'evil.pgp.ack.pgp'));
      await fsp.writeFile(path.join(h.dataDir.outboxFor('other-org', 'live'), 'theirs.pgp.ack.pgp'), 'other partner');
      // A ledger batch and ack row for the planted file, so the download is a receipt.
      await h.ledger.batches.insertReceived({
        id: 'b-20260101-outboxtest01', partnerId: 'acme', channel: 'sftp', lane: 'live', fileName: 'a.json.pgp',
        sha256: 'f'.repeat(64), size: 10, receivedAt: new Date(), dataKey: 'v1.x',
      });
      await h.ledger.batches.recordAck({
        batch_id: 'b-20260101-outboxtest01', version: 1, sha256: createHash('sha256').update(ackBytes).digest('hex'),
        outbox_name: ack, signed_by: 'gw', encrypted_to: 'acme', created_at: new Date().toISOString(),
      });
    });

    it('lists only regular ack files (no symlink, no other names, no other partner)', async () => {
      const { value } = await call<ssh2.FileEntry[]>((cb) => sftp.readdir('/outbox', cb));
      expect(value!.map((e) => e.filename).sort()).to.deep.equal([ack, 'test']);
    });

    it('downloads a planted ack and records the delivery receipt', async () => {
      const r = await h.sftp(p, [`get /outbox/${ack} got.ack.pgp`]);
      expect(r.code, r.stderr).to.equal(0);
      expect(await fsp.readFile(path.join(h.dir, 'local', 'got.ack.pgp'))).to.deep.equal(ackBytes);
      const row = await h.ledger.batches.getAck('b-20260101-outboxtest01', 1);
      expect(row?.first_downloaded_at).to.be.a('string');
      expect(row?.download_count).to.equal(1);
      const events = await h.ledger.batches.events('b-20260101-outboxtest01');
      expect(events.map((e) => e.stage)).to.include('ack-downloaded');
    });

    it('a download that ends before the ack stage records the ack still counts as its receipt', async () => {
      // The ack stage links the file into the outbox first and records the row right after.
      const name = 'early.json.pgp.ack.pgp';
      const bytes = Buffer.from('-----BEGIN PGP MESSAGE-----\nearly\n-----END PGP MESSAGE-----\n');
      await fsp.writeFile(path.join(h.dataDir.outboxFor('acme', 'live'), name), bytes);
      await h.ledger.batches.insertReceived({
        id: 'b-20260101-outboxearly1', partnerId: 'acme', channel: 'sftp', lane: 'live', fileName: 'early.json.pgp',
        sha256: 'e'.repeat(64), size: 10, receivedAt: new Date(), dataKey: 'v1.x',
      });
      const download = h.sftp(p, [`get /outbox/${name} early.ack.pgp`]);
      await new Promise((r) => setTimeout(r, 300));
      await h.ledger.batches.recordAck({
        batch_id: 'b-20260101-outboxearly1', version: 1, sha256: createHash('sha256').update(bytes).digest('hex'),
        outbox_name: name, signed_by: 'gw', encrypted_to: 'acme', created_at: new Date().toISOString(),
      });
      const r = await download;
      expect(r.code, r.stderr).to.equal(0);
      const row = await h.ledger.batches.getAck('b-20260101-outboxearly1', 1);
      expect(row?.download_count).to.equal(1);
      await fsp.rm(path.join(h.dataDir.outboxFor('acme', 'live'), name));
    });

    it('a partial read is not a receipt', async () => {
      const open = await call<Buffer>((cb) => sftp.open(`/outbox/${ack}`, 'r', cb));
      await call((cb) => sftp.read(open.value!, Buffer.alloc(5), 0, 5, 0, cb));
      await call((cb) => sftp.close(open.value!, cb));
      expect((await h.ledger.batches.getAck('b-20260101-outboxtest01', 1))?.download_count).to.equal(1);
    });

    it('never follows a symlink planted in the outbox', async () => {
      const open = await call<Buffer>((cb) => sftp.open('/outbox/evil.pgp.ack.pgp', 'r', cb));
      expect(open.err?.code).to.equal(STATUS.NO_SUCH_FILE);
      const st = await call((cb) => sftp.stat('/outbox/evil.pgp.ack.pgp', cb));
      expect(st.err?.code).to.equal(STATUS.NO_SUCH_FILE);
      const r = await h.sftp(p, ['get /outbox/evil.pgp.ack.pgp evil.out']);
      expect(r.code).to.not.equal(0);
      expect(await fsp.stat(path.join(h.dir, 'local', 'evil.out')).then(() => true, () => false)).to.equal(false);
      // Deleting it is refused too (the link stays; we never touch what it points to).
      const rm = await call((cb) => sftp.unlink('/outbox/evil.pgp.ack.pgp', cb));
      expect(rm.err?.code).to.equal(STATUS.NO_SUCH_FILE);
      expect(await fsp.readFile(path.join(h.dir, 'outside-secret.pgp.ack.pgp'), 'utf8')).to.equal('SECRET OUTSIDE THE OUTBOX');
    });

    it('refuses writes to the outbox and reads of other names', async () => {
      const w = await call<Buffer>((cb) => sftp.open(`/outbox/${ack}`, 'w', cb));
      expect(w.err?.code).to.equal(STATUS.PERMISSION_DENIED);
      const n = await call<Buffer>((cb) => sftp.open('/outbox/notes.txt', 'r', cb));
      expect(n.err?.code).to.equal(STATUS.NO_SUCH_FILE);
    });

    it('another partner sees only its own outbox', async () => {
      const r = await h.sftp(other, ['ls -1 /outbox']);
      expect(r.code, r.stderr).to.equal(0);
      expect(r.stdout).to.include('theirs.pgp.ack.pgp');
      expect(r.stdout).to.not.include(ack);
      const g = await h.sftp(other, [`get /outbox/${ack} stolen.pgp`]);
      expect(g.code).to.not.equal(0);
    });

    it('the partner may delete its ack', async () => {
      const r = await h.sftp(p, [`rm /outbox/${ack}`]);
      expect(r.code, r.stderr).to.equal(0);
      expect(await fsp.readdir(h.dataDir.outboxFor('acme', 'live'))).to.not.include(ack);
    });
  });
});
