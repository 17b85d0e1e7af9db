/**
 * The reconciler makes the ledger, not Redis, the source of truth: at start and
 * periodically it re-enqueues every unfinished batch that has no live job (a worker killed
 * mid-job whose lock expired, a Redis that lost its data, an enqueue that failed during
 * ingest). It also sweeps leftovers of crashed uploads. Every action is idempotent, but
 * with several worker processes (hosts) only one runs it at a time: the holder of the
 * ledger lease `reconciler` — overlapping runs would race (one removing a job the other
 * just queued) and multiply the Redis and disk scans for nothing.
 */
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import type { Ledger } from '../gateway/core/ledger/index.js';
import type { DataDir } from '../gateway/core/data-dir.js';
import type { Logger } from '../gateway/core/logger.js';
import type { PipelineStage } from '../gateway/core/pipeline.js';
import type { Queues } from './queues.js';
import { LeasedLoop } from './leased-loop.js';
import { publishQueued, withdrawForRevokedKeys } from '../gateway/admin/outbound-documents.js';

/** Temp files untouched for this long belong to uploads or stages that died. */
const STALE_MS = 60 * 60 * 1000;

export interface ReconcileReport {
  checked: number;
  requeued: number;
  /** Webhook pushes queued again (acks neither delivered nor given up, without a live job). */
  pushesRequeued: number;
  /** Result documents queued again (confirmed handoffs not yet released, without a live job). */
  resultsRequeued: number;
  /** Handoffs seen overdue for the first time (an event each, once per version). */
  handoffsOverdue: number;
  sweptFiles: number;
}

/** The ledger lease that elects the one reconciling process. */
export const RECONCILER_LEASE = 'reconciler';

export class Reconciler {
  private readonly loop: LeasedLoop;

  /** `holder`: this process's id in the lease (host, pid, random). */
  constructor(
    private readonly ledger: Ledger, private readonly queues: Queues, private readonly dataDir: DataDir, private readonly log: Logger,
    holder: string,
    /** PGW_HANDOFF_OVERDUE_HOURS. */
    private readonly handoffOverdueHours = 24,
  ) {
    this.loop = new LeasedLoop({ ledger, log, lease: RECONCILER_LEASE, holder, failedMessage: 'reconcile failed', run: () => this.runOnce() });
  }

  async runOnce(): Promise<ReconcileReport> {
    const report: ReconcileReport = { checked: 0, requeued: 0, pushesRequeued: 0, resultsRequeued: 0, handoffsOverdue: 0, sweptFiles: 0 };
    for (const b of await this.ledger.batches.unfinished()) {
      report.checked++;
      const stage = b.stage as PipelineStage;
      if (await this.queues.hasLiveJob(stage, b.id)) continue;
      await this.queues.removeJob(stage, b.id);
      await this.queues.enqueue(stage, b.id);
      report.requeued++;
      this.log.info('reconciler re-enqueued batch', { batch: b.id, stage });
    }
    for (const a of await this.ledger.ackPushes.undelivered()) {
      if (await this.queues.hasLiveDelivery(a.batch_id, a.version)) continue;
      await this.queues.enqueueDelivery(a.batch_id, a.version);
      report.pushesRequeued++;
      this.log.info('reconciler re-queued an ack push', { batch: a.batch_id, version: a.version });
    }
    // An outcome recorded whose result was never made (the process died right after the
    // ledger write, or Redis lost the job): exactly one result follows, the stage is idempotent.
    for (const r of await this.ledger.handoffs.unreleased()) {
      if (await this.queues.hasLiveResult(r.batch_id, r.version)) continue;
      await this.queues.enqueueResult(r.batch_id, r.version);
      report.resultsRequeued++;
      this.log.info('reconciler re-queued a result', { batch: r.batch_id, version: r.version });
    }
    for (const r of await this.ledger.handoffs.undeliveredResults()) {
      if (await this.queues.hasLiveDelivery(r.batch_id, r.version, 'result')) continue;
      await this.queues.enqueueDelivery(r.batch_id, r.version, 'result');
      report.pushesRequeued++;
      this.log.info('reconciler re-queued a result push', { batch: r.batch_id, version: r.version });
    }
    // Outbound documents: one recorded but not linked into the outbox (a crash in between) is
    // published; one encrypted to a key revoked since is withdrawn; pushes lost are re-queued.
    const docDeps = { ledger: this.ledger, dataDir: this.dataDir, log: this.log };
    for (const doc of await this.ledger.documents.queued()) {
      await publishQueued(docDeps, doc);
      this.log.info('reconciler published a queued document', { document: doc.id, partner: doc.partner_id });
    }
    for (const partnerId of new Set((await this.ledger.documents.list({ pending: true, limit: 10_000 })).map((x) => x.partner_id))) {
      await withdrawForRevokedKeys(docDeps, partnerId);
    }
    // A document file without a row: the gateway died between the rename and the ledger
    // write, and the sender got no answer (its retry makes the document anew).
    for (const name of await fsp.readdir(this.dataDir.documentsDir).catch(() => [] as string[])) {
      const file = path.join(this.dataDir.documentsDir, name);
      const st = await fsp.lstat(file).catch(() => null);
      if (!st || st.mtimeMs > Date.now() - STALE_MS) continue;
      if (!(await this.ledger.documents.get(name.replace(/\.pgp$/, '')))) {
        await fsp.rm(file, { force: true });
        report.sweptFiles++;
      }
    }
    for (const doc of await this.ledger.documents.undelivered()) {
      if (await this.queues.hasLiveDelivery(doc.id, 1, 'document')) continue;
      await this.queues.enqueueDelivery(doc.id, 1, 'document');
      report.pushesRequeued++;
      this.log.info('reconciler re-queued a document push', { document: doc.id });
    }
    // Accepted records the account service has not confirmed in time: an event on the batch
    // (and a warning) once per version, which retention waits for before it may purge them.
    for (const o of await this.ledger.handoffs.noteOverdue(new Date(Date.now() - this.handoffOverdueHours * 3600_000))) {
      report.handoffsOverdue++;
      this.log.warn('handoff overdue: the account service has not confirmed the records', { batch: o.batch_id, version: o.version, state: o.state });
    }
    report.sweptFiles += await this.sweep();
    return report;
  }

  /**
   * Start: try now, then every `intervalMs`; a run happens when this process holds (or
   * takes) the lease. The lease lasts three periods, so a leader that died is replaced
   * within about three periods, and one slow run does not lose it.
   */
  start(intervalMs: number): void {
    this.loop.start(intervalMs, 3 * intervalMs);
  }

  close(): Promise<void> {
    return this.loop.close();
  }

  private async sweep(): Promise<number> {
    let n = 0;
    const cutoff = Date.now() - STALE_MS;
    for (const dir of [this.dataDir.tmpDir, this.dataDir.quarantineDir, this.dataDir.acksDir]) {
      for (const name of await fsp.readdir(dir).catch(() => [] as string[])) {
        if (dir === this.dataDir.acksDir && !name.startsWith('.tmp-')) continue;
        const file = path.join(dir, name);
        const st = await fsp.lstat(file).catch(() => null);
        if (!st || st.mtimeMs > cutoff) continue;
        if (dir === this.dataDir.quarantineDir) {
          // Quarantine of a batch still being decrypted is rewritten by its retry anyway.
          const batch = await this.ledger.batches.get(this.dataDir.quarantineBatchId(name));
          if (batch && batch.stage === 'decrypt') continue;
        }
        await fsp.rm(file, { force: true });
        n++;
      }
    }
    // Ack links left under a temp name in an outbox by versions that made the temp link
    // there (now it is made in tmp/); the partner never sees dot-names, but nothing else
    // would remove them.
    for (const partner of await fsp.readdir(path.join(this.dataDir.root, 'partners')).catch(() => [] as string[])) {
      for (const lane of ['live', 'test'] as const) {
        const dir = this.dataDir.outboxFor(partner, lane);
        for (const name of await fsp.readdir(dir).catch(() => [] as string[])) {
          if (!name.startsWith('.tmp-')) continue;
          const st = await fsp.lstat(path.join(dir, name)).catch(() => null);
          if (!st?.isFile() || st.mtimeMs > cutoff) continue;
          await fsp.rm(path.join(dir, name), { force: true });
          n++;
        }
      }
    }
    // Spool files without a ledger row: the gateway died between rename and ledger write,
    // and the client got no success reply — the partner will upload again.
    for (const name of await fsp.readdir(this.dataDir.spoolDir).catch(() => [] as string[])) {
      const file = path.join(this.dataDir.spoolDir, name);
      const st = await fsp.lstat(file).catch(() => null);
      if (!st || st.mtimeMs > cutoff) continue;
      if (!(await this.ledger.batches.get(name.replace(/\.pgp$/, '')))) {
        await fsp.rm(file, { force: true });
        n++;
      }
    }
    if (n) this.log.info('swept stale files', { count: n });
    return n;
  }
}
