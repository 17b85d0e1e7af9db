/**
 * Reference server: the smallest correct ssh2 1.17 SFTP server that writes uploads to disk
 * (no hashing, no fsync, no ledger) — what the library itself allows. Same algorithms as
 * the gateway, TCP_NODELAY like the gateway. Run as a child process:
 *
 *   node --import tsx bench/lib/bare-sftp-server.ts <hostKey> <authorized .pub> <root dir>
 *
 * prints `{"port":N}` once listening; SIGTERM stops it.
 */
import { constants as fsc, promises as fsp } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { timingSafeEqual } from 'node:crypto';
import ssh2 from 'ssh2';
import { serverAlgorithms } from '../../gateway/sftp/algorithms.js';

const { Server, utils } = ssh2;
const { STATUS_CODE, OPEN_MODE } = utils.sftp;

const [hostKeyFile, pubFile, rootDir] = process.argv.slice(2);
if (!hostKeyFile || !pubFile || !rootDir) {
  console.error('usage: bare-sftp-server <hostKey> <authorized .pub> <root dir>');
  process.exit(2);
}
const allowed = utils.parseKey(await fsp.readFile(pubFile));
if (allowed instanceof Error) throw allowed;
const allowedPub = allowed.getPublicSSH();

function local(p: string): string {
  return path.join(rootDir!, path.posix.normalize(`/${p}`));
}

function flagsOf(pflags: number): number {
  let f = 0;
  if ((pflags & OPEN_MODE.READ) && (pflags & OPEN_MODE.WRITE)) f |= fsc.O_RDWR;
  else if (pflags & OPEN_MODE.WRITE) f |= fsc.O_WRONLY;
  else f |= fsc.O_RDONLY;
  if (pflags & OPEN_MODE.CREAT) f |= fsc.O_CREAT;
  if (pflags & OPEN_MODE.TRUNC) f |= fsc.O_TRUNC;
  if (pflags & OPEN_MODE.EXCL) f |= fsc.O_EXCL;
  if (pflags & OPEN_MODE.APPEND) f |= fsc.O_APPEND;
  return f;
}

function attrsOf(st: { mode: number; size: number; uid: number; gid: number; atimeMs: number; mtimeMs: number }): ssh2.Attributes {
  return { mode: st.mode, size: st.size, uid: st.uid, gid: st.gid, atime: Math.floor(st.atimeMs / 1000), mtime: Math.floor(st.mtimeMs / 1000) };
}

const server = new Server({ hostKeys: [await fsp.readFile(hostKeyFile)], algorithms: serverAlgorithms() }, (client) => {
  client.on('error', () => {});
  // Not in @types/ssh2, but public in ssh2 1.17 (what the gateway does on its own sockets).
  (client as unknown as { setNoDelay(on: boolean): void }).setNoDelay(true);
  client.on('authentication', (ctx) => {
    if (ctx.method !== 'publickey') return ctx.reject(['publickey']);
    const k = ctx.key;
    const same = k.algo === allowed.type && k.data.length === allowedPub.length && timingSafeEqual(k.data, allowedPub);
    if (!same) return ctx.reject(['publickey']);
    if (ctx.signature && ctx.blob) {
      if (allowed.verify(ctx.blob, ctx.signature, ctx.hashAlgo) !== true) return ctx.reject(['publickey']);
    }
    ctx.accept();
  });
  client.on('session', (accept) => {
    const session = accept();
    session.on('error', () => {});
    session.on('sftp', (acceptSftp) => {
      const sftp = acceptSftp();
      sftp.on('error', () => {});
      const handles = new Map<number, FileHandle>();
      let next = 0;
      const h2id = (h: Buffer): number => (h.length === 4 ? h.readUInt32BE(0) : -1);
      const fail = (reqid: number) => (err: NodeJS.ErrnoException) => {
        sftp.status(reqid, err.code === 'ENOENT' ? STATUS_CODE.NO_SUCH_FILE : err.code === 'EACCES' ? STATUS_CODE.PERMISSION_DENIED : STATUS_CODE.FAILURE);
      };
      sftp.on('OPEN', (reqid, filename, flags) => {
        fsp.open(local(filename), flagsOf(flags), 0o600).then((fh) => {
          const id = next++;
          handles.set(id, fh);
          const b = Buffer.alloc(4);
          b.writeUInt32BE(id);
          sftp.handle(reqid, b);
        }, fail(reqid));
      });
      sftp.on('WRITE', (reqid, handle, offset, data) => {
        const fh = handles.get(h2id(handle));
        if (!fh) return sftp.status(reqid, STATUS_CODE.FAILURE);
        const write = async () => {
          let done = 0;
          while (done < data.length) done += (await fh.write(data, done, data.length - done, offset + done)).bytesWritten;
        };
        write().then(() => sftp.status(reqid, STATUS_CODE.OK), fail(reqid));
      });
      sftp.on('READ', (reqid, handle, offset, len) => {
        const fh = handles.get(h2id(handle));
        if (!fh) return sftp.status(reqid, STATUS_CODE.FAILURE);
        const buf = Buffer.alloc(Math.min(len, 256 * 1024));
        fh.read(buf, 0, buf.length, offset).then(({ bytesRead }) => {
          if (bytesRead === 0) sftp.status(reqid, STATUS_CODE.EOF);
          else sftp.data(reqid, buf.subarray(0, bytesRead));
        }, fail(reqid));
      });
      sftp.on('CLOSE', (reqid, handle) => {
        const id = h2id(handle);
        const fh = handles.get(id);
        if (!fh) return sftp.status(reqid, STATUS_CODE.FAILURE);
        handles.delete(id);
        fh.close().then(() => sftp.status(reqid, STATUS_CODE.OK), fail(reqid));
      });
      sftp.on('FSTAT', (reqid, handle) => {
        const fh = handles.get(h2id(handle));
        if (!fh) return sftp.status(reqid, STATUS_CODE.FAILURE);
        fh.stat().then((st) => sftp.attrs(reqid, attrsOf(st)), fail(reqid));
      });
      for (const ev of ['STAT', 'LSTAT'] as const) {
        sftp.on(ev, (reqid: number, p: string) => {
          fsp.stat(local(p)).then((st) => sftp.attrs(reqid, attrsOf(st)), fail(reqid));
        });
      }
      sftp.on('REALPATH', (reqid, p) => {
        const norm = path.posix.normalize(`/${p === '.' ? '' : p}`);
        sftp.name(reqid, [{ filename: norm, longname: norm, attrs: {} as ssh2.Attributes }]);
      });
      sftp.on('SETSTAT', (reqid) => sftp.status(reqid, STATUS_CODE.OK));
      sftp.on('FSETSTAT', (reqid) => sftp.status(reqid, STATUS_CODE.OK));
      sftp.on('close', () => {
        for (const fh of handles.values()) void fh.close().catch(() => {});
        handles.clear();
      });
    });
  });
});
server.on('error', (err: Error) => console.error(`bare sftp server error: ${err.message}`));
server.listen(0, '127.0.0.1', () => {
  console.log(JSON.stringify({ port: (server.address() as { port: number }).port }));
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
