/**
 * Raw SFTP packets over the `sftp` subsystem (no client library in between): every request
 * gets exactly one reply — also odd, malformed or refused ones — and the server survives
 * garbage and dropped clients. Plus the server's close() lifecycle.
 */
import { expect } from 'chai';
import { createHash } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import net from 'node:net';
import type ssh2 from 'ssh2';
import { SftpHarness, type TestPartner } from '../../helpers/sftp-harness.js';
import { waitFor } from '../../helpers/wait-for.js';

const T = {
  INIT: 1, VERSION: 2, OPEN: 3, CLOSE: 4, READ: 5, WRITE: 6, LSTAT: 7, FSTAT: 8, SETSTAT: 9, FSETSTAT: 10, OPENDIR: 11,
  READDIR: 12, REMOVE: 13, MKDIR: 14, RMDIR: 15, REALPATH: 16, STAT: 17, RENAME: 18, READLINK: 19, SYMLINK: 20,
  STATUS: 101, HANDLE: 102, DATA: 103, NAME: 104, ATTRS: 105, EXTENDED: 200,
};
const ST = { OK: 0, EOF: 1, NO_SUCH_FILE: 2, PERMISSION_DENIED: 3, FAILURE: 4, BAD_MESSAGE: 5, OP_UNSUPPORTED: 8 };

const u32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
};
const u64 = (n: number) => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt(n));
  return b;
};
const str = (s: string | Buffer) => {
  const b = typeof s === 'string' ? Buffer.from(s, 'utf8') : s;
  return Buffer.concat([u32(b.length), b]);
};
const NO_ATTRS = u32(0);

interface Reply {
  type: number;
  id: number;
  status?: number;
  message?: string;
  body: Buffer;
}

/** A minimal SFTP v3 client on a raw channel. */
class RawSftp {
  private buf = Buffer.alloc(0);
  private readonly waiters = new Map<number, (r: Reply) => void>();
  private readonly replies: Reply[] = [];
  private nextId = 1;

  constructor(private readonly ch: ssh2.ClientChannel) {
    ch.on('data', (d: Buffer) => this.onData(d));
  }

  private onData(d: Buffer): void {
    this.buf = Buffer.concat([this.buf, d]);
    while (this.buf.length >= 4) {
      const len = this.buf.readUInt32BE(0);
      if (this.buf.length < 4 + len) return;
      const pkt = this.buf.subarray(4, 4 + len);
      this.buf = this.buf.subarray(4 + len);
      const type = pkt[0]!;
      const id = type === T.VERSION ? 0 : pkt.readUInt32BE(1);
      const r: Reply = { type, id, body: pkt.subarray(5) };
      if (type === T.STATUS) {
        r.status = pkt.readUInt32BE(5);
        const ml = pkt.readUInt32BE(9);
        r.message = pkt.subarray(13, 13 + ml).toString('utf8');
      }
      this.replies.push(r);
      this.waiters.get(id)?.(r);
      this.waiters.delete(id);
    }
  }

  private send(type: number, id: number | null, ...parts: Buffer[]): void {
    const body = Buffer.concat([Buffer.from([type]), ...(id === null ? [] : [u32(id)]), ...parts]);
    this.ch.write(Buffer.concat([u32(body.length), body]));
  }

  async init(): Promise<Reply> {
    const p = new Promise<Reply>((resolve) => this.waiters.set(0, resolve));
    this.send(T.INIT, null, u32(3));
    return p;
  }

  /** Send a request; resolves with its reply (rejects after a deadline: a hang is a failure). */
  request(type: number, ...parts: Buffer[]): Promise<Reply> {
    const id = this.nextId++;
    const p = new Promise<Reply>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`no reply to request ${id} (type ${type})`)), 5000);
      this.waiters.set(id, (r) => {
        clearTimeout(t);
        resolve(r);
      });
    });
    this.send(type, id, ...parts);
    return p;
  }

  repliesFor(id: number): Reply[] {
    return this.replies.filter((r) => r.id === id);
  }
}

describe('sftp protocol edges (raw packets)', function () {
  let h: SftpHarness;
  let p: TestPartner;

  before(async () => {
    h = await SftpHarness.start({ config: { limits: { uploadBytes: 1024 * 1024 } } });
    p = await h.addPartner('acme');
  });
  after(async () => {
    await h?.close();
  });

  async function raw(): Promise<{ client: ssh2.Client; sftp: RawSftp }> {
    const { client, error } = await h.connect({ username: 'acme', privateKey: await fsp.readFile(p.key) });
    if (error) throw error;
    const ch = await new Promise<ssh2.ClientChannel>((resolve, reject) => client.subsys('sftp', (err, c) => (err ? reject(err) : resolve(c))));
    const sftp = new RawSftp(ch);
    const v = await sftp.init();
    expect(v.type).to.equal(T.VERSION);
    return { client, sftp };
  }

  it('announces limits@openssh.com in VERSION and answers it (stock OpenSSH clients then write 255 KiB)', async () => {
    const { client, error } = await h.connect({ username: 'acme', privateKey: await fsp.readFile(p.key) });
    if (error) throw error;
    try {
      const ch = await new Promise<ssh2.ClientChannel>((resolve, reject) => client.subsys('sftp', (err, c) => (err ? reject(err) : resolve(c))));
      const sftp = new RawSftp(ch);
      const v = await sftp.init();
      expect(v.type).to.equal(T.VERSION);
      // after the version: (name, data) string pairs
      expect(v.body.equals(Buffer.concat([str('limits@openssh.com'), str('1')]))).to.equal(true);
      const r = await sftp.request(T.EXTENDED, str('limits@openssh.com'));
      expect(r.type).to.equal(201); // SSH_FXP_EXTENDED_REPLY
      const limits = [0, 1, 2, 3].map((k) => Number(r.body.readBigUInt64BE(8 * k)));
      expect(limits).to.deep.equal([256 * 1024, 64 * 1024, 255 * 1024, 64]);
      // a 255 KiB write is accepted like any other
      const open = await sftp.request(T.OPEN, str('/inbox/big-write.json.pgp'), u32(0x1a), NO_ATTRS);
      expect(open.type).to.equal(T.HANDLE);
      const handle = open.body.subarray(4, 4 + open.body.readUInt32BE(0));
      const w = await sftp.request(T.WRITE, str(handle), u64(0), str(Buffer.alloc(255 * 1024, 7)));
      expect(w.status).to.equal(ST.OK);
      await sftp.request(T.CLOSE, str(handle));
    } finally {
      client.end();
    }
  });

  it('answers every request exactly once, refusals included', async () => {
    const { client, sftp } = await raw();
    try {
      const bogus = str(Buffer.from([9, 9, 9, 9]));
      const cases: [string, number, Buffer[], (r: Reply) => void][] = [
        ['write, bad handle', T.WRITE, [bogus, u64(0), str('x')], (r) => expect(r.status).to.equal(ST.FAILURE)],
        ['read, bad handle', T.READ, [bogus, u64(0), u32(10)], (r) => expect(r.status).to.equal(ST.FAILURE)],
        ['fstat, bad handle', T.FSTAT, [bogus], (r) => expect(r.status).to.equal(ST.FAILURE)],
        ['readdir, bad handle', T.READDIR, [bogus], (r) => expect(r.status).to.equal(ST.FAILURE)],
        ['close, bad handle', T.CLOSE, [bogus], (r) => expect(r.status).to.equal(ST.FAILURE)],
        ['setstat /keys', T.SETSTAT, [str('/keys'), NO_ATTRS], (r) => expect(r.status).to.equal(ST.PERMISSION_DENIED)],
        ['opendir missing', T.OPENDIR, [str('/nope')], (r) => expect(r.status).to.equal(ST.NO_SUCH_FILE)],
        ['opendir a file', T.OPENDIR, [str('/keys/gateway.asc')], (r) => expect(r.status).to.equal(ST.FAILURE)],
        ['remove gateway.asc', T.REMOVE, [str('/keys/gateway.asc')], (r) => expect(r.status).to.equal(ST.PERMISSION_DENIED)],
        ['mkdir', T.MKDIR, [str('/inbox/d'), NO_ATTRS], (r) => expect(r.status).to.equal(ST.PERMISSION_DENIED)],
        ['rmdir', T.RMDIR, [str('/inbox')], (r) => expect(r.status).to.equal(ST.PERMISSION_DENIED)],
        ['symlink', T.SYMLINK, [str('/inbox/l.pgp'), str('/etc/passwd')], (r) => expect(r.status).to.equal(ST.PERMISSION_DENIED)],
        ['readlink', T.READLINK, [str('/inbox/l.pgp')], (r) => expect(r.status).to.equal(ST.OP_UNSUPPORTED)],
        ['realpath above root', T.REALPATH, [str('/../../..')], (r) => expect(r.type).to.equal(T.NAME)],
        ['stat /inbox', T.STAT, [str('/inbox')], (r) => expect(r.type).to.equal(T.ATTRS)],
        ['lstat /outbox/test', T.LSTAT, [str('/outbox/test')], (r) => expect(r.type).to.equal(T.ATTRS)],
        ['rename inbox → outbox', T.RENAME, [str('/inbox/a.filepart'), str('/outbox/a.pgp.ack.pgp')], (r) => expect(r.status).to.be.oneOf([ST.PERMISSION_DENIED, ST.NO_SUCH_FILE])],
        ['open read traversal', T.OPEN, [str('/inbox/../../etc/passwd'), u32(1), NO_ATTRS], (r) => expect(r.status).to.equal(ST.NO_SUCH_FILE)],
        ['open read inbox', T.OPEN, [str('/inbox/x.pgp'), u32(1), NO_ATTRS], (r) => expect(r.status).to.equal(ST.PERMISSION_DENIED)],
        ['open write dir', T.OPEN, [str('/inbox'), u32(0x1a), NO_ATTRS], (r) => expect(r.status).to.equal(ST.PERMISSION_DENIED)],
        ['open bad name', T.OPEN, [str('/inbox/.env'), u32(0x1a), NO_ATTRS], (r) => expect(r.status).to.equal(ST.PERMISSION_DENIED)],
        ['ext statvfs', T.EXTENDED, [str('statvfs@openssh.com'), str('/')], (r) => expect(r.status).to.equal(ST.OP_UNSUPPORTED)],
        ['ext posix-rename junk', T.EXTENDED, [str('posix-rename@openssh.com'), Buffer.from([0, 0])], (r) => expect(r.status).to.equal(ST.BAD_MESSAGE)],
        ['ext hardlink', T.EXTENDED, [str('hardlink@openssh.com'), str('/keys/gateway.asc'), str('/inbox/h.pgp')], (r) => expect(r.status).to.equal(ST.PERMISSION_DENIED)],
      ];
      const replies = await Promise.all(cases.map(([, type, parts]) => sftp.request(type, ...parts)));
      cases.forEach(([name, , , check], i) => {
        const r = replies[i]!;
        try {
          check(r);
        } catch (err) {
          throw new Error(`${name}: ${(err as Error).message}`);
        }
        expect(sftp.repliesFor(r.id), name).to.have.length(1);
      });
    } finally {
      client.end();
    }
  });

  it('a sparse write far beyond the limit fails with limits.sparse_write; CLOSE reports it; nothing remains', async () => {
    const { client, sftp } = await raw();
    try {
      const open = await sftp.request(T.OPEN, str('/inbox/sparse.pgp'), u32(0x1a), NO_ATTRS);
      expect(open.type).to.equal(T.HANDLE);
      const handle = open.body.subarray(4, 4 + open.body.readUInt32BE(0));
      const w = await sftp.request(T.WRITE, str(handle), u64(2 ** 40), str('x'));
      expect(w.status).to.equal(ST.FAILURE);
      expect(w.message).to.match(/^limits\.sparse_write: /);
      const c = await sftp.request(T.CLOSE, str(handle));
      expect(c.status).to.equal(ST.FAILURE);
      expect(c.message).to.match(/^limits\.sparse_write: /);
      expect(await h.tmpFiles()).to.deep.equal([]);
      expect((await h.batches('acme')).filter((b) => b.file_name === 'sparse.pgp')).to.have.length(0);
    } finally {
      client.end();
    }
  });

  it('a staged temp file can be resumed without TRUNC, committed by posix-rename, or removed', async () => {
    const { client, sftp } = await raw();
    try {
      const handleOf = (r: Reply) => r.body.subarray(4, 4 + r.body.readUInt32BE(0));
      const o1 = await sftp.request(T.OPEN, str('/inbox/r.pgp.part'), u32(0x1a), NO_ATTRS); // WRITE|CREAT|TRUNC
      await sftp.request(T.WRITE, str(handleOf(o1)), u64(0), str('hello '));
      expect((await sftp.request(T.CLOSE, str(handleOf(o1)))).status).to.equal(ST.OK);
      const o2 = await sftp.request(T.OPEN, str('/inbox/r.pgp.part'), u32(0x0a), NO_ATTRS); // WRITE|CREAT: resume
      await sftp.request(T.WRITE, str(handleOf(o2)), u64(6), str('world'));
      expect((await sftp.request(T.CLOSE, str(handleOf(o2)))).status).to.equal(ST.OK);
      expect(await fsp.readFile(`${h.dataDir.stagingDir('acme', 'live')}/r.pgp.part`, 'utf8')).to.equal('hello world');
      const pr = await sftp.request(T.EXTENDED, str('posix-rename@openssh.com'), str('/inbox/r.pgp.part'), str('/inbox/r.pgp'));
      expect(pr.status).to.equal(ST.OK);
      const rows = (await h.batches('acme')).filter((b) => b.file_name === 'r.pgp');
      expect(rows.map((b) => b.sha256)).to.deep.equal([createHash('sha256').update('hello world').digest('hex')]);

      const o3 = await sftp.request(T.OPEN, str('/inbox/.gone.pgp'), u32(0x1a), NO_ATTRS);
      await sftp.request(T.WRITE, str(handleOf(o3)), u64(0), str('bye'));
      // While it is open for writing, it can be neither removed nor committed.
      expect((await sftp.request(T.REMOVE, str('/inbox/.gone.pgp'))).status).to.equal(ST.FAILURE);
      expect((await sftp.request(T.RENAME, str('/inbox/.gone.pgp'), str('/inbox/gone.pgp'))).status).to.equal(ST.FAILURE);
      expect((await sftp.request(T.CLOSE, str(handleOf(o3)))).status).to.equal(ST.OK);
      expect((await sftp.request(T.REMOVE, str('/inbox/.gone.pgp'))).status).to.equal(ST.OK);
      expect(await h.stagedFiles('acme')).to.deep.equal([]);
      expect((await h.batches('acme')).filter((b) => b.file_name === 'gone.pgp')).to.have.length(0);
    } finally {
      client.end();
    }
  });

  it('a fatal protocol error on one connection and garbage bytes on another do not affect the server', async () => {
    const { client, sftp } = await raw();
    const gone = new Promise<void>((resolve) => client.once('close', () => resolve()));
    // Unknown packet type: ssh2 treats it as fatal for the channel.
    void sftp.request(99, Buffer.alloc(3)).catch(() => {});
    client.end();
    await gone;

    for (const junk of [Buffer.from('GET / HTTP/1.1\r\n\r\n'), Buffer.concat([Buffer.from('SSH-2.0-x\r\n'), Buffer.alloc(5000, 0xff)])]) {
      const s = net.connect(h.port, '127.0.0.1');
      s.on('error', () => {});
      s.resume(); // read (and drop) the server's banner, or 'end'/'close' never come
      s.write(junk);
      await new Promise((resolve) => s.once('close', resolve));
    }
    const r = await h.sftp(p, ['ls /']);
    expect(r.code, r.stderr).to.equal(0);
  });

  it('a second subsystem request on the same channel is ignored, the session keeps working', async () => {
    const { client, sftp } = await raw();
    try {
      const ch = (sftp as unknown as { ch: ssh2.ClientChannel }).ch as ssh2.ClientChannel & { outgoing: { id: number } };
      // Test-side internals: ssh2's client API cannot send this on an open channel.
      (client as unknown as { _protocol: { subsystem: (id: number, name: string, wantReply: boolean) => void } })._protocol.subsystem(ch.outgoing.id, 'sftp', true);
      const r = await sftp.request(T.REALPATH, str('.'));
      expect(r.type).to.equal(T.NAME);
    } finally {
      client.end();
    }
  });

  it('close() is idempotent, ends connections, aborts open uploads and refuses new ones', async () => {
    const h2 = await SftpHarness.start();
    try {
      const p2 = await h2.addPartner('acme');
      const { client, error } = await h2.connect({ username: 'acme', privateKey: await fsp.readFile(p2.key) });
      expect(error).to.equal(null);
      const ch = await new Promise<ssh2.ClientChannel>((resolve, reject) => client.subsys('sftp', (err, c) => (err ? reject(err) : resolve(c))));
      const sftp = new RawSftp(ch);
      await sftp.init();
      const open = await sftp.request(T.OPEN, str('/inbox/open.pgp'), u32(0x1a), NO_ATTRS);
      await sftp.request(T.WRITE, str(open.body.subarray(4, 8)), u64(0), str('partial'));
      expect(await h2.tmpFiles()).to.have.length(1);
      const clientClosed = new Promise<void>((resolve) => client.once('close', () => resolve()));
      await Promise.all([h2.server.close(), h2.server.close()]);
      await clientClosed;
      expect(await h2.tmpFiles()).to.deep.equal([]);
      const refused = await new Promise<boolean>((resolve) => {
        const s = net.connect(h2.port, '127.0.0.1');
        s.on('error', () => resolve(true));
        s.on('connect', () => s.once('close', () => resolve(true)));
      });
      expect(refused).to.equal(true);
      await waitFor(() => h2.logsWith('sftp stopped').length === 1, 2000, 'one stop line');
    } finally {
      await h2.close();
    }
  });
});
