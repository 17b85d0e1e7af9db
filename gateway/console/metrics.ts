/**
 * Prometheus metrics (prom-client, one registry per process). Ledger-wide facts (batches by
 * partner/status/code, stage latencies, acks pending pickup, key expiry) are computed from
 * the ledger at scrape time, so any gateway process reports the same numbers whichever
 * process did the work. Queue depths come from Redis; SFTP and HTTP counters are this
 * process's own. Labels carry partner ids, statuses, codes, routes and fingerprints —
 * never personal data.
 *
 * Stage latencies are a histogram over a sliding window (batches received in the last
 * 24 h), rebuilt at every scrape: read it with histogram_quantile, not with rate().
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Ledger } from '../core/ledger/index.js';
import { SubjectRequestRepo } from '../core/ledger/subject-requests.js';
import type { Config } from '../core/config.js';
import type { Logger } from '../core/logger.js';
import type { ProtocolCounters } from '../core/protocol-counters.js';
import type { ErrorCode } from '../core/errors.js';
import { DataDir } from '../core/data-dir.js';
import { AuditWatch } from './audit-watch.js';
import { promises as fsp } from 'node:fs';

/** What metrics need of the queues (workers/queues.ts implements it). */
export interface QueueStats {
  jobCounts(): Promise<Record<string, Record<string, number>>>;
  oldestWaitingAgeSeconds(): Promise<Record<string, number>>;
}


const WINDOW_MS = 24 * 3600_000;

export class GatewayMetrics implements ProtocolCounters {
  readonly registry = new Registry();
  private readonly http: Counter<'route' | 'status'>;
  private readonly sessions: Gauge;
  private readonly authFailures: Counter;
  private readonly bans: Counter;
  private readonly refusals: Counter<'code'>;

  constructor(
    ledger: Ledger, queues: QueueStats | null,
    config: Pick<Config, 'dataDir'> & { console: Pick<Config['console'], 'overdueAckHours'>; handoff: Pick<Config['handoff'], 'overdueHours'> },
    log: Logger,
  ) {
    const r = this.registry;
    collectDefaultMetrics({ register: r });
    /** A gauge whose values are recomputed by `fill` at every scrape; a failing source is logged, not fatal. */
    const computed = <L extends string>(name: string, help: string, labelNames: L[], fill: (g: Gauge<L>) => Promise<void>) => {
      const g: Gauge<L> = new Gauge<L>({
        name, help, labelNames, registers: [r],
        async collect() {
          g.reset();
          try {
            await fill(g);
          } catch (err) {
            log.warn('metric collection failed', { metric: name, err });
          }
        },
      });
    };

    this.http = new Counter({ name: 'pgw_http_requests_total', help: 'partner API requests by route pattern and status', labelNames: ['route', 'status'], registers: [r] });
    this.sessions = new Gauge({ name: 'pgw_sftp_sessions', help: 'open authenticated SFTP connections in this process', registers: [r] });
    this.authFailures = new Counter({ name: 'pgw_sftp_auth_failures_total', help: 'failed SSH authentication attempts', registers: [r] });
    this.bans = new Counter({ name: 'pgw_sftp_bans_total', help: 'addresses banned after repeated failures', registers: [r] });
    this.refusals = new Counter({ name: 'pgw_sftp_refusals_total', help: 'SFTP requests refused with an error code, by code', labelNames: ['code'], registers: [r] });

    computed('pgw_batches', 'batches received in the last 30 days by partner, status and error code', ['partner', 'status', 'code'], async (g) => {
      for (const c of await ledger.stats.batchCounts(new Date(Date.now() - 30 * 24 * 3600_000))) {
        g.set({ partner: c.partner_id, status: c.status, code: c.code ?? '' }, c.n);
      }
    });
    const stageHist: Histogram<'stage'> = new Histogram({
      name: 'pgw_stage_latency_seconds', help: 'stage latency of batches received in the last 24 h (window, rebuilt per scrape)',
      labelNames: ['stage'], buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800], registers: [r],
      async collect() {
        stageHist.reset();
        try {
          const d = await ledger.stats.stageDurations(new Date(Date.now() - WINDOW_MS));
          for (const [stage, xs] of Object.entries(d) as [string, number[]][]) for (const x of xs) stageHist.observe({ stage }, x);
        } catch (err) {
          log.warn('metric collection failed', { metric: 'pgw_stage_latency_seconds', err });
        }
      },
    });
    computed('pgw_acks_pending_pickup', 'acks neither downloaded nor pushed, by partner; overdue ones separately', ['partner', 'overdue'], async (g) => {
      const p = await ledger.stats.pendingAcks(new Date(Date.now() - config.console.overdueAckHours * 3600_000));
      for (const e of p.byPartner) {
        g.set({ partner: e.partner_id, overdue: 'false' }, e.pending - e.overdue);
        g.set({ partner: e.partner_id, overdue: 'true' }, e.overdue);
      }
    });
    computed('pgw_handoffs_waiting', 'accepted records not confirmed by the account service (handoffs ready or taken) by partner and state; overdue ones separately', ['partner', 'state', 'overdue'], async (g) => {
      const w = await ledger.handoffs.waiting(new Date(Date.now() - config.handoff.overdueHours * 3600_000));
      for (const e of w.byPartner) {
        g.set({ partner: e.partner_id, state: e.state, overdue: 'false' }, e.waiting - e.overdue);
        g.set({ partner: e.partner_id, state: e.state, overdue: 'true' }, e.overdue);
      }
    });
    computed('pgw_subject_requests_overdue', 'subject requests (AVG) open past their due date (received + 28 days)', [], async (g) => {
      g.set((await new SubjectRequestRepo(ledger.handle).counts()).overdue);
    });
    computed('pgw_results_pending_pickup', 'result documents (newest per batch) neither downloaded nor pushed, by partner', ['partner'], async (g) => {
      for (const e of await ledger.handoffs.pendingResults()) g.set({ partner: e.partner_id }, e.pending);
    });
    computed('pgw_documents_pending_pickup', 'outbound documents published and neither downloaded nor pushed, by partner; overdue (PGW_ACK_OVERDUE_HOURS) separately', ['partner', 'overdue'], async (g) => {
      for (const e of await ledger.documents.waitingByPartner(new Date(Date.now() - config.console.overdueAckHours * 3600_000).toISOString())) {
        g.set({ partner: e.partner_id, overdue: 'false' }, e.waiting - e.overdue);
        g.set({ partner: e.partner_id, overdue: 'true' }, e.overdue);
      }
    });
    computed('pgw_key_expiry_seconds', 'seconds until an OpenPGP key expires (keys expiring within 90 days)', ['owner', 'partner', 'fingerprint'], async (g) => {
      for (const k of await ledger.stats.expiringKeys(new Date(Date.now() + 90 * 24 * 3600_000))) {
        g.set({ owner: k.owner, partner: k.partner_id ?? '', fingerprint: k.fingerprint }, Math.round((Date.parse(k.not_after) - Date.now()) / 1000));
      }
    });
    // Gauges without labels: reset() leaves them at 0, which here would read as "nothing
    // unfinished", "disk full" or "chain broken"; without a fact they are left out instead.
    computed('pgw_batch_oldest_unfinished_seconds', 'age of the oldest batch whose pipeline has not finished (0 when none)', [], async (g) => {
      g.remove({});
      const oldest = await ledger.stats.oldestUnfinishedReceivedAt();
      g.set(oldest ? Math.max(0, Math.round((Date.now() - Date.parse(oldest)) / 1000)) : 0);
    });
    // The data dir's file system: blobs, spool and (by default) the SQLite ledger live there.
    computed('pgw_data_dir_free_bytes', 'bytes available to the gateway on the data dir\'s file system', [], async (g) => {
      g.remove({});
      const s = await fsp.statfs(config.dataDir);
      g.set(s.bavail * s.bsize);
    });
    computed('pgw_data_dir_size_bytes', 'size of the data dir\'s file system', [], async (g) => {
      g.remove({});
      const s = await fsp.statfs(config.dataDir);
      g.set(s.blocks * s.bsize);
    });
    const audit = new AuditWatch(ledger, new DataDir(config.dataDir), log);
    computed('pgw_audit_chain_ok', '1 when the last check of the audit chain (and its anchor) passed, 0 when it found the chain broken', [], async (g) => {
      g.remove({});
      const st = await audit.state();
      if (st) g.set(st.ok ? 1 : 0);
    });
    computed('pgw_audit_chain_checked_timestamp_seconds', 'when the audit chain was last checked (unix seconds; checked at most every 10 minutes)', [], async (g) => {
      g.remove({});
      const st = await audit.state();
      if (st) g.set(st.checkedAt);
    });
    if (queues) {
      computed('pgw_queue_jobs', 'BullMQ jobs by queue and state', ['queue', 'state'], async (g) => {
        for (const [queue, counts] of Object.entries(await queues.jobCounts())) {
          for (const [state, n] of Object.entries(counts)) g.set({ queue, state }, n);
        }
      });
      computed('pgw_queue_oldest_waiting_seconds', 'age of the oldest waiting job per queue (0 when none waits)', ['queue'], async (g) => {
        for (const [queue, age] of Object.entries(await queues.oldestWaitingAgeSeconds())) g.set({ queue }, age);
      });
    }
  }

  httpRequest(route: string, status: number): void {
    this.http.inc({ route, status: String(status) });
  }

  sftpSession(delta: 1 | -1): void {
    this.sessions.inc(delta);
  }

  sftpAuthFailure(): void {
    this.authFailures.inc();
  }

  sftpBan(): void {
    this.bans.inc();
  }

  sftpRefusal(code: ErrorCode): void {
    this.refusals.inc({ code });
  }
}
