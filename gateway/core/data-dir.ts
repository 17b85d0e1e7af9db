/**
 * Layout of the data dir (`PGW_DATA_DIR`). One place decides where every blob lives;
 * names inside it are ours (batch ids, partner ids) — a partner-chosen file name is only
 * ever used for the outbox entry, after validation by `core/file-names.ts`.
 *
 * ```
 * ledger.db                     SQLite ledger (embedded default)
 * keys/                         SSH host keys, TLS cert+key, data-key salt (0600, encrypted)
 * run/ports.json                ports actually bound
 * tmp/                          uploads in progress (same filesystem as spool: rename is atomic)
 * spool/<batchId>.pgp           files as received (already OpenPGP-encrypted)
 * spool/<batchId>.sealed        a received file that was NOT an encrypted message, sealed
 * quarantine/<batchId>.<run>.sealed  decrypt output until the signature verdict (sealed at rest)
 * payload/<batchId>.sealed      promoted plaintext (sealed at rest, per-batch data key)
 * accepted/<batchId>.sealed     accepted records for the downstream handoff (sealed)
 * accepted/<batchId>.v<N>.<hash>.outcome.sealed  the account service's messages, until the result is made
 * acks/<batchId>.v<N>.pgp       the one canonical ack of each version
 * acks/<batchId>.result-v<N>.pgp  the one result document of each handoff version
 * documents/<documentId>.pgp   outbound documents as encrypted (their plaintext is never on disk)
 * partners/<id>/outbox/[test/]  acks as partners see them (test lane in outbox/test)
 * partners/<id>/staging/<lane>/ temp-named uploads (`*.filepart`) awaiting their rename
 * ```
 */
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { ensureDir } from './fs-atomic.js';
import type { Logger } from './logger.js';

/** Sub-directories deeper than this are not walked when narrowing (the layout above is 4 deep). */
const NARROW_DEPTH = 6;

export class DataDir {
  constructor(readonly root: string) {}

  get ledgerFile(): string { return path.join(this.root, 'ledger.db'); }
  get keysDir(): string { return path.join(this.root, 'keys'); }
  get runDir(): string { return path.join(this.root, 'run'); }
  get tmpDir(): string { return path.join(this.root, 'tmp'); }
  get spoolDir(): string { return path.join(this.root, 'spool'); }
  get quarantineDir(): string { return path.join(this.root, 'quarantine'); }
  get payloadDir(): string { return path.join(this.root, 'payload'); }
  get acceptedDir(): string { return path.join(this.root, 'accepted'); }
  get acksDir(): string { return path.join(this.root, 'acks'); }
  get documentsDir(): string { return path.join(this.root, 'documents'); }

  spoolFile(batchId: string): string { return path.join(this.spoolDir, `${batchId}.pgp`); }
  /** A received file that turned out not to be an encrypted message, sealed at rest instead. */
  spoolSealedFile(batchId: string): string { return path.join(this.spoolDir, `${batchId}.sealed`); }
  /** One file per decrypt run: a lapsed run never writes into another run's (or the promoted) file. */
  quarantineFile(batchId: string, run: string): string { return path.join(this.quarantineDir, `${batchId}.${run}.sealed`); }
  /** The batch id a quarantine file belongs to. */
  quarantineBatchId(fileName: string): string { return fileName.split('.')[0]!; }
  payloadFile(batchId: string): string { return path.join(this.payloadDir, `${batchId}.sealed`); }
  acceptedFile(batchId: string): string { return path.join(this.acceptedDir, `${batchId}.sealed`); }
  ackBlob(batchId: string, version: number): string { return path.join(this.acksDir, `${batchId}.v${version}.pgp`); }
  /** The result document of a handoff version (a document to the partner, kept with the acks). */
  resultBlob(batchId: string, version: number): string { return path.join(this.acksDir, `${batchId}.result-v${version}.pgp`); }
  /** An outbound document, signed and encrypted (README "Sending documents to partners"). */
  documentBlob(documentId: string): string { return path.join(this.documentsDir, `${documentId}.pgp`); }
  partnerDir(partnerId: string): string { return path.join(this.root, 'partners', partnerId); }
  outboxDir(partnerId: string): string { return path.join(this.partnerDir(partnerId), 'outbox'); }
  stagingDir(partnerId: string, lane: 'live' | 'test'): string { return path.join(this.partnerDir(partnerId), 'staging', lane); }
  /** Half of a self-service key submission (`newkey.asc` or its `.sig`) waiting for the other half. */
  keyIncomingDir(partnerId: string): string { return path.join(this.partnerDir(partnerId), 'keys-incoming'); }
  outboxFor(partnerId: string, lane: 'live' | 'test'): string {
    return lane === 'test' ? path.join(this.outboxDir(partnerId), 'test') : this.outboxDir(partnerId);
  }

  /**
   * Create the shared folders (0700: nothing here is for other users), and narrow to 0700
   * every folder of an existing data dir that is open to group or others (made by an older
   * version, by hand, or under a permissive umask): mkdir's mode applies only to folders it
   * creates. One log line names what was narrowed (paths relative to the data dir: ids only).
   */
  async ensure(log?: Logger): Promise<string[]> {
    for (const d of [this.root, this.keysDir, this.runDir, this.tmpDir, this.spoolDir, this.quarantineDir,
      this.payloadDir, this.acceptedDir, this.acksDir, this.documentsDir, path.join(this.root, 'partners')]) {
      await ensureDir(d);
    }
    const narrowed: string[] = [];
    const failed: string[] = [];
    await narrowTree(this.root, 0, async (dir, mode) => {
      const rel = path.relative(this.root, dir) || '.';
      try {
        await fsp.chmod(dir, mode & 0o700);
        narrowed.push(`${rel} (was ${(mode & 0o777).toString(8)})`);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code !== 'ENOENT') failed.push(`${rel} (${code ?? 'error'})`);
      }
    });
    if (narrowed.length > 0) log?.warn('data dir folders were open to other users; narrowed to 0700', { count: narrowed.length, dirs: narrowed.slice(0, 50) });
    if (failed.length > 0) log?.warn('data dir folders are open to other users and could not be narrowed (not their owner?)', { count: failed.length, dirs: failed.slice(0, 50) });
    return narrowed;
  }

  async ensurePartner(partnerId: string): Promise<void> {
    await ensureDir(this.outboxFor(partnerId, 'test'));
    await ensureDir(this.stagingDir(partnerId, 'live'));
    await ensureDir(this.stagingDir(partnerId, 'test'));
  }
}

/**
 * Calls `narrow` for `dir` and each folder below it whose mode lets group or others in.
 * The data dir itself may be a symlink (to another disk); links below it are not followed.
 * A folder another process removes meanwhile (a finished upload's) is skipped.
 */
async function narrowTree(dir: string, depth: number, narrow: (dir: string, mode: number) => Promise<void>): Promise<void> {
  try {
    const st = depth === 0 ? await fsp.stat(dir) : await fsp.lstat(dir);
    if (!st.isDirectory()) return;
    if ((st.mode & 0o077) !== 0) await narrow(dir, st.mode);
    if (depth >= NARROW_DEPTH) return;
    for (const e of await fsp.readdir(dir, { withFileTypes: true })) {
      if (e.isDirectory()) await narrowTree(path.join(dir, e.name), depth + 1, narrow);
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}
