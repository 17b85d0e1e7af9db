/**
 * Guards for one installation spread over several processes or hosts.
 *
 * SQLite is safe for several processes of one host (WAL, BEGIN IMMEDIATE, busy_timeout)
 * but not on a network or cluster file system, whose byte-range locks and shared-memory
 * WAL index do not work across hosts (SQLite's own documentation says so): two hosts would
 * corrupt the file. So an SQLite ledger on such a file system is refused.
 *
 * The data dir and the ledger must belong together: two hosts each with a local SQLite
 * file but one shared data dir would hand out batch ids and acks from two ledgers over
 * one spool. The ledger's installation id is written into the data dir by the first
 * process; a process whose ledger has another id refuses to start.
 */
import { promises as fsp, statfsSync } from 'node:fs';
import path from 'node:path';
import { PgwError } from '../errors.js';
import { publishOnce, removeQuietly, tempNameFor } from '../fs-atomic.js';
import type { Ledger } from './index.js';

/** statfs f_type magic numbers of network and cluster file systems (linux/magic.h and friends). */
const SHARED_FILESYSTEMS: Record<number, string> = {
  0x6969: 'nfs',
  0x517b: 'smb',
  0xff534d42: 'cifs',
  0xfe534d42: 'smb2',
  0x00c36400: 'ceph',
  0x01021997: '9p',
  0x65735546: 'fuse (sshfs, glusterfs, …)',
  0x5346414f: 'afs',
  0x01161970: 'gfs2',
  0x7461636f: 'ocfs2',
  0x47504653: 'gpfs',
  0x0bd00bd0: 'lustre',
};

/** The shared file system a statfs type names, or null for a local one. */
export function sharedFilesystem(type: number): string | null {
  return SHARED_FILESYSTEMS[type >>> 0] ?? null;
}

/** Refuse an SQLite ledger whose directory lies on a network or cluster file system. */
export function assertSqliteLocal(file: string): void {
  const kind = sharedFilesystem(statfsSync(path.dirname(file)).type);
  if (kind) throw new PgwError('ledger.sqlite_shared', undefined, { filesystem: kind });
}

/**
 * Pair the data dir with the ledger: record the ledger's installation id in
 * `<data dir>/installation-id` on first start; refuse when it names another ledger.
 */
export async function pairDataDirWithLedger(dataDirRoot: string, ledger: Ledger): Promise<void> {
  const id = await ledger.leases.installationId();
  const file = path.join(dataDirRoot, 'installation-id');
  if (!(await fsp.stat(file).catch(() => null))) {
    // Written whole under a temp name, then linked: of two processes starting together on
    // a fresh data dir, one publishes, the other reads the complete file.
    const tmp = tempNameFor(file);
    await fsp.writeFile(tmp, `${id}\n`, { flag: 'wx', mode: 0o644 });
    await fsp.open(tmp, 'r').then(async (fh) => { await fh.sync(); await fh.close(); });
    await publishOnce(tmp, file);
    await removeQuietly(tmp);
  }
  const recorded = (await fsp.readFile(file, 'utf8')).trim();
  if (recorded !== id) throw new PgwError('ledger.data_dir_mismatch', undefined, { dataDir: dataDirRoot });
}
