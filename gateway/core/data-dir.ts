/**
 * Layout of the data dir (`PGW_DATA_DIR`). One place decides where every blob lives;
 * names inside it are ours (batch ids, partner ids) — a partner-chosen file name is only
 * ever used for the outbox entry, after validation by `ingest/file-names.ts`.
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
 * acks/<batchId>.v<N>.pgp       the one canonical ack of each version
 * partners/<id>/outbox/[test/]  acks as partners see them (test lane in outbox/test)
 * partners/<id>/staging/<lane>/ temp-named uploads (`*.filepart`) awaiting their rename
 * ```
 */
import path from 'node:path';
import { ensureDir } from './fs-atomic.js';

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
  partnerDir(partnerId: string): string { return path.join(this.root, 'partners', partnerId); }
  outboxDir(partnerId: string): string { return path.join(this.partnerDir(partnerId), 'outbox'); }
  stagingDir(partnerId: string, lane: 'live' | 'test'): string { return path.join(this.partnerDir(partnerId), 'staging', lane); }
  /** Half of a self-service key submission (`newkey.asc` or its `.sig`) waiting for the other half. */
  keyIncomingDir(partnerId: string): string { return path.join(this.partnerDir(partnerId), 'keys-incoming'); }
  outboxFor(partnerId: string, lane: 'live' | 'test'): string {
    return lane === 'test' ? path.join(this.outboxDir(partnerId), 'test') : this.outboxDir(partnerId);
  }

  /** Create the shared folders (0700: nothing here is for other users). */
  async ensure(): Promise<void> {
    for (const d of [this.root, this.keysDir, this.runDir, this.tmpDir, this.spoolDir, this.quarantineDir,
      this.payloadDir, this.acceptedDir, this.acksDir, path.join(this.root, 'partners')]) {
      await ensureDir(d);
    }
  }

  async ensurePartner(partnerId: string): Promise<void> {
    await ensureDir(this.outboxFor(partnerId, 'test'));
    await ensureDir(this.stagingDir(partnerId, 'live'));
    await ensureDir(this.stagingDir(partnerId, 'test'));
  }
}
