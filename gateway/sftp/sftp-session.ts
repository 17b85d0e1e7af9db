/**
 * SFTP request handlers for one session (SFTPGo's `handler.go` role). Each request goes
 * through {@link serve}: the handler returns a reply description, and exactly one reply is
 * sent — any throw becomes a status via status-map.ts. No request can go unanswered.
 */
import type ssh2 from 'ssh2';
import { PgwError } from '../core/errors.js';
import { serializeError } from '../core/logger.js';
import { HandleTable } from './handle-table.js';
import type { SftpConnection } from './connection.js';
import {
  abortUpload, closeUpload, listInbox, OPEN_FLAGS, openUpload, removeInboxEntry, renameInInbox, statInboxEntry, writeUpload,
} from './inbox.js';
import {
  closeOutboxFile, listOutbox, MAX_READ_BYTES, openOutboxFile, readOutboxFile, removeOutboxEntry, statOutboxEntry,
} from './outbox.js';
import type { OpenHandle, SessionContext } from './session-context.js';
import {
  closeKeyUpload, listKeyIncoming, openKeyUpload, readKeyIncomingResult, removeKeyIncoming, RESULT_NAME, statKeyIncoming, writeKeyUpload,
} from './key-incoming.js';
import { failure, noSuchFile, SFTP_STATUS, toStatus, unsupported, type SftpStatusCode } from './status-map.js';
import { readSshStrings } from '../core/ssh-wire.js';
import { limitsReplyBody, outboundBacklogBytes, sendExtendedReply } from './ssh2-internals.js';
import {
  datedDir, datedEntries, dirAttrs, entry, fileAttrs, GATEWAY_KEY_NAME, isDirNode, KEYS_INCOMING_DIR, normalisePath, resolvePath, type DirEntry, type FileAttrs, type VNode,
} from './virtual-fs.js';

/**
 * What `limits@openssh.com` announces (sftp-server.ts puts it in the VERSION reply). ssh2
 * parses SFTP packets up to 256 KiB; 255 KiB writes are what OpenSSH's own server allows.
 */
export const SFTP_MAX_PACKET = 256 * 1024;
export const SFTP_MAX_WRITE = 255 * 1024;

/** Names per READDIR reply. */
const READDIR_CHUNK = 100;
/** Replies ssh2 may hold for a peer that stopped reading before we drop it (mscdex/ssh2#1505, outbound). */
export const MAX_OUTBOUND_BACKLOG = 16 * 1024 * 1024;

const WRITE_FLAGS = OPEN_FLAGS.WRITE | OPEN_FLAGS.APPEND | OPEN_FLAGS.CREAT | OPEN_FLAGS.TRUNC | OPEN_FLAGS.EXCL;

type Reply =
  | { status: SftpStatusCode; message?: string }
  | { handle: Buffer }
  | { data: Buffer }
  | { names: DirEntry[] }
  | { attrs: FileAttrs | Record<string, never> }
  | { extended: Buffer };

const OK: Reply = { status: SFTP_STATUS.OK };

function node(rawPath: string): VNode | null {
  const p = normalisePath(rawPath);
  return p === null ? null : resolvePath(p);
}

/** Attach handlers to an accepted SFTP channel. */
export function attachSftpSession(sftp: ssh2.SFTPWrapper, conn: SftpConnection, ctx: SessionContext): void {
  const table = new HandleTable<OpenHandle>(conn.budget);
  const log = ctx.log;
  let closed = false;

  const send = (reqid: number, r: Reply): void => {
    try {
      if ('handle' in r) sftp.handle(reqid, r.handle);
      else if ('data' in r) sftp.data(reqid, r.data);
      else if ('names' in r) sftp.name(reqid, r.names);
      else if ('attrs' in r) sftp.attrs(reqid, r.attrs as ssh2.Attributes);
      else if ('extended' in r) {
        if (!sendExtendedReply(sftp, reqid, r.extended)) sftp.status(reqid, SFTP_STATUS.FAILURE);
      }
      else sftp.status(reqid, r.status, r.message);
    } catch (err) {
      log.debug('sftp reply failed', { err: serializeError(err) });
    }
    if (outboundBacklogBytes(sftp) > MAX_OUTBOUND_BACKLOG) {
      log.warn('peer stopped reading replies; dropping connection', { partner: ctx.partnerId });
      conn.end('outbound backlog');
    }
  };

  /** Run one request. `fn` runs synchronously up to its first await (WRITE ordering). */
  const serve = (reqid: number, op: string, fn: () => Promise<Reply>, bytes = 0): void => {
    conn.touch();
    let p: Promise<Reply>;
    try {
      p = fn();
    } catch (err) {
      p = Promise.reject(err);
    }
    const done = p.then(
      (r) => send(reqid, r),
      (err: unknown) => {
        const s = toStatus(err);
        if (s.code !== undefined) {
          // A refusal the partner can act on: the operator sees its code, in the log and the metrics.
          log.info('sftp request refused', { op, status: s.status, code: s.code });
          ctx.counters?.sftpRefusal(s.code);
        } else if (s.status === SFTP_STATUS.FAILURE) log.warn('sftp request failed', { op, err: serializeError(err) });
        else log.debug('sftp request refused', { op, status: s.status });
        send(reqid, { status: s.status, message: s.message });
      },
    );
    conn.track(done, bytes);
  };

  const addHandle = async (h: OpenHandle): Promise<Reply> => {
    const id = closed ? null : table.add(h);
    if (id === null) {
      await dispose(h);
      if (closed) throw failure('session closed');
      throw new PgwError('limits.open_files', undefined, { limit: conn.budget.max });
    }
    return { handle: id };
  };

  const dispose = async (h: OpenHandle): Promise<void> => {
    if (h.kind === 'upload') await abortUpload(ctx, h);
    else if (h.kind === 'outbox-file') {
      await h.receipt;
      await h.fh.close().catch(() => {});
    }
  };

  const ensureBudget = (): void => {
    if (conn.budget.inUse >= conn.budget.max) throw new PgwError('limits.open_files', undefined, { limit: conn.budget.max });
  };

  const gatewayKey = async (): Promise<Buffer> => Buffer.from(await ctx.gatewayPublicKeys(), 'utf8');

  // The time virtual folders show: the partner's registration, looked up once per session.
  let registered: Promise<Date> | null = null;
  const folderTime = (): Promise<Date> => (registered ??= ctx.ledger.partners.get(ctx.partnerId)
    .then((p) => (p ? new Date(p.created_at) : new Date()), () => new Date()));
  const dated = async (attrs: FileAttrs): Promise<FileAttrs> => datedDir(attrs, await folderTime());

  const statNode = async (n: VNode | null): Promise<FileAttrs> => {
    if (!n) throw noSuchFile();
    switch (n.kind) {
      case 'root':
      case 'keys-dir':
        return dirAttrs(false);
      case 'inbox-dir':
      case 'outbox-dir':
      case 'keys-incoming-dir':
        return dirAttrs(true);
      case 'keys-incoming-entry':
        return statKeyIncoming(ctx, n.name);
      case 'inbox-entry':
        return statInboxEntry(ctx, n.lane, n.name);
      case 'outbox-entry':
        return statOutboxEntry(ctx, n.lane, n.name);
      case 'gateway-key':
        return fileAttrs((await gatewayKey()).length, Date.now(), 0o400);
      default:
        throw noSuchFile();
    }
  };

  const listDir = async (n: VNode): Promise<DirEntry[]> => {
    switch (n.kind) {
      case 'root':
        return [
          entry('inbox', dirAttrs(true), ctx.partnerId),
          entry('keys', dirAttrs(false), ctx.partnerId),
          entry('outbox', dirAttrs(true), ctx.partnerId),
        ];
      case 'inbox-dir':
        return listInbox(ctx, n.lane);
      case 'outbox-dir':
        return listOutbox(ctx, n.lane);
      case 'keys-dir':
        return [
          entry(GATEWAY_KEY_NAME, fileAttrs((await gatewayKey()).length, Date.now(), 0o400), ctx.partnerId),
          entry(KEYS_INCOMING_DIR, dirAttrs(true), ctx.partnerId),
        ];
      case 'keys-incoming-dir':
        return listKeyIncoming(ctx);
      default:
        throw noSuchFile();
    }
  };

  sftp.on('OPEN', (reqid: number, filename: string, flags: number) => serve(reqid, 'open', async () => {
    const n = node(filename);
    const writing = (flags & WRITE_FLAGS) !== 0;
    if (!n || n.kind === 'none') {
      if (writing) throw new PgwError('upload.permission_denied');
      throw noSuchFile();
    }
    if (isDirNode(n)) throw writing ? new PgwError('upload.permission_denied') : failure('is a directory');
    ensureBudget();
    if (n.kind === 'inbox-entry') return addHandle(await openUpload(ctx, n.lane, n.name, flags));
    if (n.kind === 'keys-incoming-entry') {
      if (!writing && n.name === RESULT_NAME) {
        const data = await readKeyIncomingResult(ctx);
        if (!data) throw noSuchFile();
        return addHandle({ kind: 'memory', data, mtime: new Date() });
      }
      if (!writing || flags & OPEN_FLAGS.READ) throw new PgwError('upload.permission_denied', '/keys/incoming is write-only');
      return addHandle(openKeyUpload(ctx, n.name));
    }
    if (writing) throw new PgwError('upload.permission_denied');
    if (n.kind === 'outbox-entry') return addHandle(await openOutboxFile(ctx, n.lane, n.name));
    return addHandle({ kind: 'memory', data: await gatewayKey(), mtime: new Date() });
  }));

  sftp.on('WRITE', (reqid: number, handle: Buffer, offset: number, data: Buffer) => serve(reqid, 'write', () => {
    const h = table.get(handle);
    if (!h) return Promise.reject(failure('invalid handle'));
    if (h.kind === 'key-upload') {
      writeKeyUpload(h, offset, data);
      return Promise.resolve(OK);
    }
    if (h.kind !== 'upload') return Promise.reject(new PgwError('upload.permission_denied', 'this file is not open for writing'));
    return writeUpload(ctx, h, offset, data).then(() => OK);
  }, data.length));

  sftp.on('READ', (reqid: number, handle: Buffer, offset: number, len: number) => serve(reqid, 'read', async () => {
    const h = table.get(handle);
    if (!h) throw failure('invalid handle');
    if (h.kind === 'outbox-file') {
      const data = await readOutboxFile(ctx, h, offset, len);
      return data === null ? { status: SFTP_STATUS.EOF } : { data };
    }
    if (h.kind === 'memory') {
      if (!Number.isSafeInteger(offset) || offset >= h.data.length) return { status: SFTP_STATUS.EOF };
      return { data: h.data.subarray(offset, offset + Math.min(len, MAX_READ_BYTES)) };
    }
    if (h.kind === 'upload') throw new PgwError('upload.permission_denied', 'files in /inbox can be written, not read');
    throw failure('is a directory');
  }));

  sftp.on('CLOSE', (reqid: number, handle: Buffer) => serve(reqid, 'close', async () => {
    const h = table.take(handle);
    if (!h) throw failure('invalid handle');
    if (h.kind === 'upload') await closeUpload(ctx, h);
    else if (h.kind === 'key-upload') await closeKeyUpload(ctx, h);
    else if (h.kind === 'outbox-file') await closeOutboxFile(ctx, h);
    return OK;
  }));

  sftp.on('FSTAT', (reqid: number, handle: Buffer) => serve(reqid, 'fstat', async () => {
    const h = table.get(handle);
    if (!h) throw failure('invalid handle');
    switch (h.kind) {
      case 'upload':
        return { attrs: fileAttrs(h.upload.size, Date.now()) };
      case 'outbox-file':
        return { attrs: fileAttrs(h.size, h.mtime) };
      case 'memory':
        return { attrs: fileAttrs(h.data.length, h.mtime, 0o400) };
      case 'key-upload':
        return { attrs: fileAttrs(h.data.length, Date.now()) };
      default:
        return { attrs: await dated(dirAttrs(false)) };
    }
  }));

  // Attribute changes (times, modes) are accepted and ignored: clients such as WinSCP and
  // `put -p` set them after an upload and would report an error otherwise.
  sftp.on('FSETSTAT', (reqid: number, handle: Buffer) => serve(reqid, 'fsetstat', async () => {
    if (!table.get(handle)) throw failure('invalid handle');
    return OK;
  }));

  sftp.on('SETSTAT', (reqid: number, path: string) => serve(reqid, 'setstat', async () => {
    const n = node(path);
    if (n && (n.kind === 'inbox-entry' || n.kind === 'inbox-dir' || n.kind === 'keys-incoming-entry')) return OK;
    throw new PgwError('upload.permission_denied', 'attributes can be set in /inbox and /keys/incoming only');
  }));

  sftp.on('STAT', (reqid: number, path: string) => serve(reqid, 'stat', async () => ({ attrs: await dated(await statNode(node(path))) })));
  // No symlinks exist in the virtual tree, so LSTAT = STAT.
  sftp.on('LSTAT', (reqid: number, path: string) => serve(reqid, 'lstat', async () => ({ attrs: await dated(await statNode(node(path))) })));

  sftp.on('OPENDIR', (reqid: number, path: string) => serve(reqid, 'opendir', async () => {
    const n = node(path);
    if (!n || n.kind === 'none') throw noSuchFile();
    if (!isDirNode(n)) {
      await statNode(n); // NO_SUCH_FILE when it does not exist
      throw failure('not a directory');
    }
    ensureBudget();
    return addHandle({ kind: 'dir', entries: datedEntries(await listDir(n), await folderTime(), ctx.partnerId), pos: 0 });
  }));

  sftp.on('READDIR', (reqid: number, handle: Buffer) => serve(reqid, 'readdir', async () => {
    const h = table.get(handle);
    if (!h) throw failure('invalid handle');
    if (h.kind !== 'dir') throw failure('not a directory');
    if (h.pos >= h.entries.length) return { status: SFTP_STATUS.EOF };
    const names = h.entries.slice(h.pos, h.pos + READDIR_CHUNK);
    h.pos += names.length;
    return { names };
  }));

  sftp.on('REMOVE', (reqid: number, path: string) => serve(reqid, 'remove', async () => {
    const n = node(path);
    if (!n || n.kind === 'none') throw noSuchFile();
    if (n.kind === 'inbox-entry') await removeInboxEntry(ctx, n.lane, n.name);
    else if (n.kind === 'outbox-entry') await removeOutboxEntry(ctx, n.lane, n.name);
    else if (n.kind === 'keys-incoming-entry') await removeKeyIncoming(ctx, n.name);
    else throw new PgwError('upload.permission_denied', 'only temporary uploads, outbox files and files in /keys/incoming can be deleted');
    return OK;
  }));

  const rename = async (from: string, to: string): Promise<Reply> => {
    const a = node(from);
    const b = node(to);
    if (!a || a.kind === 'none') throw noSuchFile();
    if (a.kind === 'inbox-entry' && b?.kind === 'inbox-entry') {
      await renameInInbox(ctx, a, b);
      return OK;
    }
    throw new PgwError('upload.permission_denied', 'only a temporary upload in /inbox can be renamed');
  };

  sftp.on('RENAME', (reqid: number, from: string, to: string) => serve(reqid, 'rename', () => rename(from, to)));

  sftp.on('EXTENDED', (reqid: number, name: string, data: Buffer | undefined) => serve(reqid, 'extended', async () => {
    switch (name) {
      case 'posix-rename@openssh.com': {
        const args = requestStrings(data, 2);
        if (!args) return { status: SFTP_STATUS.BAD_MESSAGE };
        return rename(args[0]!.toString('utf8'), args[1]!.toString('utf8'));
      }
      case 'fsync@openssh.com': {
        // Uploads are fsynced when committed; nothing to do early.
        const args = requestStrings(data, 1);
        if (!args || !table.get(args[0]!)) throw failure('invalid handle');
        return OK;
      }
      case 'hardlink@openssh.com':
        throw new PgwError('upload.permission_denied', 'links cannot be created');
      case 'limits@openssh.com':
        return {
          extended: limitsReplyBody({
            maxPacketLength: SFTP_MAX_PACKET, maxReadLength: MAX_READ_BYTES, maxWriteLength: SFTP_MAX_WRITE, maxOpenHandles: conn.budget.max,
          }),
        };
      default:
        throw unsupported();
    }
  }));

  // Directories and links cannot be created; there are none to read either.
  for (const [ev, text] of [['MKDIR', 'folders cannot be created'], ['RMDIR', 'folders cannot be removed'], ['SYMLINK', 'links cannot be created']] as const) {
    sftp.on(ev, (reqid: number) => serve(reqid, ev.toLowerCase(), async () => {
      throw new PgwError('upload.permission_denied', text);
    }));
  }
  sftp.on('READLINK', (reqid: number) => serve(reqid, 'readlink', async () => {
    throw unsupported();
  }));

  sftp.on('REALPATH', (reqid: number, path: string) => serve(reqid, 'realpath', async () => {
    const p = normalisePath(path);
    if (p === null) throw noSuchFile();
    return { names: [{ filename: p, longname: p, attrs: {} as FileAttrs }] };
  }));

  const cleanup = async (): Promise<void> => {
    if (closed) return;
    closed = true;
    const left = table.drain();
    let aborted = 0;
    for (const h of left) {
      if (h.kind === 'upload') aborted += 1;
      await dispose(h).catch((err: unknown) => log.warn('handle cleanup failed', { err: serializeError(err) }));
    }
    if (aborted > 0) log.info('session ended with unfinished uploads; aborted', { partner: ctx.partnerId, aborted });
  };
  conn.onCleanup(cleanup);
  // The client sent EOF (its sftp program ended): close our side too, or it waits forever.
  sftp.on('end', () => {
    conn.background(cleanup());
    sftp.end();
  });
  sftp.on('close', () => conn.background(cleanup()));
  sftp.on('error', (err: Error) => log.debug('sftp channel error', { err: serializeError(err) }));
}

/** The first `count` SSH strings of an EXTENDED request body; null when it holds fewer. */
function requestStrings(buf: Buffer | undefined, count: number): Buffer[] | null {
  const r = buf ? readSshStrings(buf, count) : null;
  return r && r.strings.length === count ? r.strings : null;
}
