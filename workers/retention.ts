/**
 * Retention (AVG: keep no longer than needed). Per data class, counted from a batch's
 * receipt and applied only to finished batches (stage `done`):
 * - **received**: the file as received (`spool/<id>.pgp`, already OpenPGP-encrypted) is deleted;
 * - **payload**: the decrypted payload, the accepted records and a sealed non-OpenPGP upload are
 *   deleted AND the batch's data key is shredded (set to null in the ledger), so any copy of
 *   a sealed file that survives somewhere (a backup) can no longer be read;
 * - **acks**: the ack and result files (canonical blobs and the SFTP outbox entries that are those blobs);
 * - **ledger**: the row is anonymised: file name, partner reference, record issues, error
 *   details and event details go; counts, codes, hashes and times stay, so statistics and
 *   the audit trail keep working.
 * Finished and failed queue jobs older than `jobDays` are removed from Redis as well.
 *
 * Accepted records the account service has not confirmed (a handoff ready or taken) are
 * never purged silently: past the payload period the handoff is first noted overdue (an
 * event on the batch, in the console and /metrics); then `PGW_HANDOFF_UNCONFIRMED` decides —
 * `keep` (default): kept until the outcome comes; `purge`: purged at a later run (so the
 * overdue was visible at least a run long) and the handoff marked expired. Records confirmed
 * but whose result is not made yet are kept until it is (the result stage deletes them).
 *
 * Two kinds of leftovers would otherwise stay forever:
 * - a batch that never reaches `done` (its worker never ran, it fails at every retry, its
 *   ack can never be made): once past the shorter of the received/payload periods and
 *   unchanged for as long, it is **expired** — moved to `done` with `batch.expired` (its
 *   verdict kept if it had one), after which the steps above treat it as any finished batch;
 * - a temp-named upload (`*.filepart`) abandoned in a partner's staging area: removed once
 *   untouched for the received period (it is a received file that was never completed).
 * Neither ever touches what is younger than {@link IN_FLIGHT_MS}, whatever the periods say.
 * Every step is idempotent (a `*_purged_at` column says it is done), so a crashed run is
 * simply run again. `dryRun` reports what would go and changes nothing.
 */
import { removeDocumentFiles } from '../gateway/admin/outbound-documents.js';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import type { Config } from '../gateway/core/config.js';
import type { Ledger, Batch } from '../gateway/core/ledger/index.js';
import { nowIso } from '../gateway/core/ledger/index.js';
import type { DataDir } from '../gateway/core/data-dir.js';
import type { Logger } from '../gateway/core/logger.js';
import { fsyncDir, removeQuietly } from '../gateway/core/fs-atomic.js';

export interface RetentionDeps {
  ledger: Ledger;
  dataDir: DataDir;
  /** `documentDays` defaults to `ackDays` (callers from before outbound documents). */
  policy: Omit<Config['retention'], 'documentDays'> & { documentDays?: number };
  /** What becomes of unconfirmed accepted records past the payload period (default: keep). */
  handoff?: Pick<Config['handoff'], 'unconfirmed'>;
  /** Removes old finished/failed jobs; null where no queues are reachable (a CLI run without Redis). */
  cleanJobs: ((olderThanMs: number) => Promise<number>) | null;
  log: Logger;
}

export interface RetentionReport {
  dryRun: boolean;
  /** Unfinished batches moved to `done` (`batch.expired`) so the steps below reach them. */
  expired: string[];
  /** Abandoned temp-named uploads removed from staging areas (a count: the names are partners'). */
  staged: number;
  received: string[];
  payload: string[];
  /** Payloads kept past their period because the account service has not confirmed their records. */
  heldForHandoff: string[];
  acks: string[];
  /** Outbound documents whose files were deleted (the row keeps id, hashes and times; the name is anonymised). */
  documents: string[];
  ledger: string[];
  jobsRemoved: number;
}

const ANON = 'anonymised';
const days = (n: number) => n * 86_400_000;
/**
 * Nothing younger than this is expired or swept, even with a period of 0: a running stage
 * or an upload in progress changes its batch row or file well within a day (the reconciler
 * re-enqueues a lost job within minutes), so what has not changed for a day has no one
 * working on it.
 */
export const IN_FLIGHT_MS = 86_400_000;

export async function runRetention(d: RetentionDeps, opts: { dryRun?: boolean; now?: Date } = {}): Promise<RetentionReport> {
  const now = opts.now ?? new Date();
  const dry = opts.dryRun === true;
  const report: RetentionReport = { dryRun: dry, expired: [], staged: 0, received: [], payload: [], heldForHandoff: [], acks: [], documents: [], ledger: [], jobsRemoved: 0 };
  const db = d.ledger.handle.db;
  report.expired = await expireUnfinished(d, now, dry);
  report.staged = await sweepStaged(d, now, dry);
  const due = (col: 'received_purged_at' | 'payload_purged_at' | 'acks_purged_at' | 'anonymised_at', keepDays: number) =>
    db.selectFrom('batches').selectAll().where('stage', '=', 'done').where(col, 'is', null)
      .where('received_at', '<=', nowIso(new Date(now.getTime() - days(keepDays)))).orderBy('received_at').limit(10_000).execute();
  const mark = (id: string, set: Partial<Batch>) => (dry ? Promise.resolve() : db.updateTable('batches').set({ ...set, updated_at: nowIso() }).where('id', '=', id).execute().then(() => {}));

  for (const b of await due('received_purged_at', d.policy.receivedDays)) {
    report.received.push(b.id);
    if (dry) continue;
    await removeQuietly(d.dataDir.spoolFile(b.id));
    await mark(b.id, { received_purged_at: nowIso(now) });
  }
  let quarantine: string[] | undefined;
  for (const b of await due('payload_purged_at', d.policy.payloadDays)) {
    if (await holdForHandoff(d, b.id, dry)) {
      report.heldForHandoff.push(b.id);
      continue;
    }
    report.payload.push(b.id);
    if (dry) continue;
    for (const f of [d.dataDir.payloadFile(b.id), d.dataDir.acceptedFile(b.id), d.dataDir.spoolSealedFile(b.id)]) await removeQuietly(f);
    // Decrypt output of runs that never finished (a batch that expired while in decrypt).
    for (const name of (quarantine ??= await fsp.readdir(d.dataDir.quarantineDir).catch(() => [] as string[]))) {
      if (d.dataDir.quarantineBatchId(name) === b.id) await removeQuietly(path.join(d.dataDir.quarantineDir, name));
    }
    // The records are gone, so is the index of who was in them (AVG: kept no longer than them).
    await d.ledger.subjects.forget(b.id);
    // Crypto-shredding: without the data key no sealed copy of this batch can be opened.
    await mark(b.id, { payload_purged_at: nowIso(now), data_key: null });
  }
  for (const b of await due('acks_purged_at', d.policy.ackDays)) {
    report.acks.push(b.id);
    if (dry) continue;
    await purgeAcks(d, b);
    await mark(b.id, { acks_purged_at: nowIso(now) });
  }
  report.documents = await expireDocuments(d, now, dry);
  for (const b of await due('anonymised_at', d.policy.ledgerDays)) {
    report.ledger.push(b.id);
    if (dry) continue;
    await d.ledger.handle.writeTx(async (tx) => {
      await tx.updateTable('batches').set({
        file_name: ANON, reference: null, record_issues: null, error_detail: null, anonymised_at: nowIso(now), updated_at: nowIso(),
      }).where('id', '=', b.id).execute();
      await tx.updateTable('batch_events').set({ detail: null }).where('batch_id', '=', b.id).execute();
      await tx.updateTable('acks').set({ outbox_name: ANON }).where('batch_id', '=', b.id).execute();
      await tx.updateTable('results').set({ outbox_name: ANON }).where('batch_id', '=', b.id).execute();
    });
  }
  if (d.cleanJobs && !dry) report.jobsRemoved = await d.cleanJobs(days(d.policy.jobDays));
  d.log.info('retention run', {
    dryRun: dry, expired: report.expired.length, staged: report.staged, received: report.received.length, payload: report.payload.length,
    heldForHandoff: report.heldForHandoff.length, acks: report.acks.length, documents: report.documents.length,
    ledger: report.ledger.length, jobsRemoved: report.jobsRemoved,
  });
  return report;
}

/**
 * Move batches stuck before `done` past retention to `done`, so the class steps reach their
 * files and row. Only a batch received before the cutoff AND unchanged since is taken, and
 * the move is conditional on the stage it was read in: a stage that moves it meanwhile wins.
 */
async function expireUnfinished(d: RetentionDeps, now: Date, dry: boolean): Promise<string[]> {
  const cutoff = nowIso(new Date(now.getTime() - Math.max(days(Math.min(d.policy.receivedDays, d.policy.payloadDays)), IN_FLIGHT_MS)));
  const stuck = await d.ledger.handle.db.selectFrom('batches').select(['id', 'stage', 'outcome', 'error_code', 'processed_at'])
    .where('stage', '!=', 'done').where('received_at', '<=', cutoff).where('updated_at', '<=', cutoff)
    .orderBy('received_at').limit(10_000).execute();
  if (dry) return stuck.map((b) => b.id);
  const out: string[] = [];
  for (const b of stuck) {
    const moved = await d.ledger.batches.advance(b.id, b.stage, 'done', {
      outcome: b.outcome ?? 'rejected', error_code: b.error_code ?? 'batch.expired', processed_at: b.processed_at ?? nowIso(now),
    }, { stage: 'retention', outcome: 'error', code: 'batch.expired', detail: { from: b.stage } });
    if (!moved) continue;
    out.push(b.id);
    d.log.warn('unfinished batch expired by retention', { batch: b.id, stage: b.stage });
  }
  return out;
}

/** Remove temp-named uploads untouched for the received period (and at least {@link IN_FLIGHT_MS}). */
async function sweepStaged(d: RetentionDeps, now: Date, dry: boolean): Promise<number> {
  const cutoff = now.getTime() - Math.max(days(d.policy.receivedDays), IN_FLIGHT_MS);
  let n = 0;
  for (const partner of await fsp.readdir(path.join(d.dataDir.root, 'partners')).catch(() => [] as string[])) {
    for (const lane of ['live', 'test'] as const) {
      const dir = d.dataDir.stagingDir(partner, lane);
      let removed = 0;
      for (const name of await fsp.readdir(dir).catch(() => [] as string[])) {
        const st = await fsp.lstat(path.join(dir, name)).catch(() => null);
        if (!st?.isFile() || st.mtimeMs > cutoff) continue;
        if (!dry) await removeQuietly(path.join(dir, name));
        removed++;
      }
      if (removed && !dry) {
        await fsyncDir(dir).catch(() => {});
        d.log.info('abandoned staged uploads removed', { partner, lane, count: removed });
      }
      n += removed;
    }
  }
  return n;
}

/**
 * Whether the payload step must leave this batch alone because of its handoff: confirmed
 * but its result not made yet; or unconfirmed, and either the policy keeps such records or
 * they were not noted overdue before this run (they are now). A purge of unconfirmed records
 * marks the handoff expired.
 */
async function holdForHandoff(d: RetentionDeps, batchId: string, dry: boolean): Promise<boolean> {
  const h = await d.ledger.handoffs.get(batchId);
  if (!h || h.state === 'expired' || h.released_at) return false;
  if (h.state === 'confirmed') return true; // the result stage releases them
  if (h.state !== 'ready' && h.state !== 'taken') return false;
  if (dry) return d.handoff?.unconfirmed !== 'purge' || !h.overdue_at;
  const { notedBefore } = await d.ledger.handoffs.noteOverdueFor(batchId, 'retention: the payload period has passed');
  if (d.handoff?.unconfirmed !== 'purge' || !notedBefore) {
    d.log.warn('unconfirmed accepted records kept past the payload period', { batch: batchId, version: h.version, policy: d.handoff?.unconfirmed ?? 'keep' });
    return true;
  }
  await d.ledger.handoffs.expire(batchId);
  d.log.warn('unconfirmed accepted records purged (PGW_HANDOFF_UNCONFIRMED=purge)', { batch: batchId, version: h.version });
  return false;
}

/** Remove every ack and result version's blob (and its note) and the outbox entries that are those blobs. */
async function purgeAcks(d: RetentionDeps, b: Batch): Promise<void> {
  const acks = [
    ...(await d.ledger.batches.acks(b.id)).map((a) => ({ ...a, blob: d.dataDir.ackBlob(b.id, a.version) })),
    ...(await d.ledger.handoffs.results(b.id)).map((r) => ({ ...r, blob: d.dataDir.resultBlob(b.id, r.version) })),
  ];
  const outbox = d.dataDir.outboxFor(b.partner_id, b.lane);
  for (const a of acks) {
    const blob = a.blob;
    const blobStat = await fsp.stat(blob).catch(() => null);
    const entry = path.join(outbox, a.outbox_name);
    const entryStat = await fsp.lstat(entry).catch(() => null);
    // Only the outbox file that IS this ack (same inode): a later upload may reuse the name.
    if (blobStat && entryStat?.isFile() && entryStat.ino === blobStat.ino && entryStat.dev === blobStat.dev) await removeQuietly(entry);
    await removeQuietly(blob);
    await removeQuietly(`${blob}.meta.json`);
  }
  await fsyncDir(outbox).catch(() => {});
}

/**
 * Outbound documents past PGW_RETENTION_DOCUMENT_DAYS: outbox entry and blob deleted, the row
 * closed as expired and its name anonymised (it may say whom the document is about), audited
 * like the acks' removal; id, hashes, sizes and times stay.
 */
async function expireDocuments(d: RetentionDeps, now: Date, dry: boolean): Promise<string[]> {
  const keep = d.policy.documentDays ?? d.policy.ackDays;
  const before = nowIso(new Date(now.getTime() - Math.max(days(keep), 0)));
  const due = await d.ledger.documents.openBefore(before);
  if (dry) return due.map((x) => x.id);
  const out: string[] = [];
  for (const doc of due) {
    await removeDocumentFiles(d, doc);
    if (!(await d.ledger.documents.close(doc.id, 'expired'))) continue;
    await d.ledger.documents.anonymise(doc.id);
    await d.ledger.audit.record('system', 'document.expired', doc.partner_id, { documentId: doc.id, keptDays: keep });
    out.push(doc.id);
  }
  return out;
}
