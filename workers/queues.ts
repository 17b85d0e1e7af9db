/**
 * Queue names, job options and the producer side (`Queues.enqueue`) used by the gateway.
 *
 * Glossary:
 * - **job id**: `<batchId>-<stage>`: at most one live job per batch and stage. A finished
 *   job is removed; re-adding it later is harmless because every stage first checks the
 *   ledger (the system of record) and does nothing if the batch has moved on.
 * - **live job**: waiting, delayed, prioritized or active. The reconciler re-enqueues
 *   unfinished batches that have none.
 */
import { Queue, type JobsOptions, type ConnectionOptions } from 'bullmq';
import { jobId, type Enqueuer, type PipelineStage } from '../gateway/core/pipeline.js';
import type { RedisConnection } from '../gateway/core/redis/connection.js';
import { queueKeyPrefix } from '../gateway/core/redis/key-names.js';

export { createRedis, waitForReady, type RedisConnection } from '../gateway/core/redis/connection.js';

export const STAGES: PipelineStage[] = ['decrypt', 'validate', 'ack'];
/** Webhook pushes of acks and results (batch id, version, kind only). */
export const DELIVER_QUEUE = 'deliver';
/** Result documents, made once the account service reported its outcome (batch id and handoff version only). */
export const RESULT_QUEUE = 'result';
/**
 * Earlier versions announced accepted records on a `handoff` queue nothing read; the
 * account service now pulls them over the internal API. Its leftover jobs are dropped.
 */
const LEGACY_HANDOFF_QUEUE = 'handoff';

export interface JobPayload {
  batchId: string;
}

/** `document`: an outbound document; its id stands in `batchId`, version 1. */
export type DeliveryKind = 'ack' | 'result' | 'document';

export interface DeliverPayload {
  batchId: string;
  version: number;
  /** Absent on jobs queued before results existed: an ack. */
  kind?: DeliveryKind;
}

export interface ResultPayload {
  batchId: string;
  version: number;
}

export interface DeliveryRetry {
  attempts: number;
  backoffMs: number;
}

/** One push job per ack version, `<batchId>-deliver-v<N>`, and per result version, `<batchId>-deliver-result-v<N>`. */
export function deliverJobId(batchId: string, version: number, kind: DeliveryKind = 'ack'): string {
  if (kind === 'document') return `${batchId}-deliver-document`;
  return kind === 'ack' ? `${batchId}-deliver-v${version}` : `${batchId}-deliver-result-v${version}`;
}

/** One result job per handoff version: `<batchId>-result-v<N>`. */
export function resultJobId(batchId: string, version: number): string {
  return `${batchId}-result-v${version}`;
}

export function jobOptions(stage: PipelineStage, batchId: string, attempts: number): JobsOptions {
  return {
    jobId: jobId(stage, batchId),
    attempts,
    // Exponential backoff; BullMQ adds jitter so retries of many batches do not align.
    backoff: { type: 'exponential', delay: 1000, jitter: 0.5 },
    removeOnComplete: true,
    removeOnFail: { age: 7 * 24 * 3600, count: 10_000 },
  };
}

/** The producer side: one BullMQ Queue per stage on one shared connection. */
export class Queues implements Enqueuer {
  readonly queues: Record<PipelineStage, Queue<JobPayload>>;
  readonly deliver: Queue<DeliverPayload>;
  readonly result: Queue<ResultPayload>;
  private readonly connection: RedisConnection;
  private closed = false;

  /** `prefix`: as configured (`PGW_QUEUE_PREFIX`); the keys carry it as a hash tag. */
  constructor(
    connection: RedisConnection,
    readonly prefix: string,
    private readonly attempts: number,
    private readonly delivery: DeliveryRetry = { attempts: 8, backoffMs: 10_000 },
  ) {
    this.connection = connection;
    const mk = <T>(name: string) => {
      const q = new Queue<T>(name, { connection: connection as ConnectionOptions, prefix: queueKeyPrefix(prefix) });
      q.on('error', () => {}); // connection errors are logged once, on the shared connection
      return q;
    };
    this.queues = { decrypt: mk<JobPayload>('decrypt'), validate: mk<JobPayload>('validate'), ack: mk<JobPayload>('ack') };
    this.deliver = mk<DeliverPayload>(DELIVER_QUEUE);
    this.result = mk<ResultPayload>(RESULT_QUEUE);
  }

  /** Queue a webhook push of one ack or result version (idempotent per version while the job lives). */
  async enqueueDelivery(batchId: string, version: number, kind: DeliveryKind = 'ack'): Promise<void> {
    await withTimeout(this.deliver.add('deliver', { batchId, version, kind }, {
      jobId: deliverJobId(batchId, version, kind),
      attempts: this.delivery.attempts,
      backoff: { type: 'exponential', delay: this.delivery.backoffMs, jitter: 0.5 },
      removeOnComplete: true,
      removeOnFail: { age: 7 * 24 * 3600, count: 10_000 },
    }), 5000);
  }

  /** True when a push job of this ack or result version is waiting, delayed or running. */
  async hasLiveDelivery(batchId: string, version: number, kind: DeliveryKind = 'ack'): Promise<boolean> {
    return liveOrCleared(this.deliver, deliverJobId(batchId, version, kind));
  }

  /** Queue the making of a result (idempotent per handoff version while the job lives). */
  async enqueueResult(batchId: string, version: number): Promise<void> {
    await withTimeout(this.result.add('result', { batchId, version }, {
      jobId: resultJobId(batchId, version),
      attempts: this.attempts,
      backoff: { type: 'exponential', delay: 1000, jitter: 0.5 },
      removeOnComplete: true,
      removeOnFail: { age: 7 * 24 * 3600, count: 10_000 },
    }), 5000);
  }

  /** True when a result job of this handoff version is waiting, delayed or running. */
  async hasLiveResult(batchId: string, version: number): Promise<boolean> {
    return liveOrCleared(this.result, resultJobId(batchId, version));
  }

  /** Drop the jobs of the retired `handoff` queue (left by earlier versions; nothing reads them). */
  async dropLegacyHandoffQueue(): Promise<number> {
    const legacy = new Queue(LEGACY_HANDOFF_QUEUE, { connection: this.connection as ConnectionOptions, prefix: queueKeyPrefix(this.prefix) });
    legacy.on('error', () => {});
    try {
      const counts = await withTimeout(legacy.getJobCounts(), 5000);
      const n = Object.values(counts).reduce((a, b) => a + b, 0);
      if (n > 0) await withTimeout(legacy.obliterate({ force: true }), 30_000);
      return n;
    } finally {
      await legacy.close();
    }
  }

  async enqueue(stage: PipelineStage, batchId: string): Promise<void> {
    await withTimeout(this.queues[stage].add(stage, { batchId }, jobOptions(stage, batchId, this.attempts)), 5000);
  }

  /** True when a waiting/active/delayed job exists for this batch and stage. */
  async hasLiveJob(stage: PipelineStage, batchId: string): Promise<boolean> {
    const job = await this.queues[stage].getJob(jobId(stage, batchId));
    if (!job) return false;
    const state = await job.getState();
    return state === 'waiting' || state === 'active' || state === 'delayed' || state === 'prioritized' || state === 'waiting-children';
  }

  /** Remove a finished/failed job so the same id can be added again. */
  async removeJob(stage: PipelineStage, batchId: string): Promise<void> {
    const job = await this.queues[stage].getJob(jobId(stage, batchId));
    if (job) await job.remove().catch(() => {});
  }

  /** Every queue of this installation (bull-board, metrics). */
  all(): Queue[] {
    return [...Object.values(this.queues), this.deliver, this.result] as Queue[];
  }

  /** Job counts by queue and state (metrics, console). */
  async jobCounts(): Promise<Record<string, Record<string, number>>> {
    const out: Record<string, Record<string, number>> = {};
    for (const q of this.all()) out[q.name] = await withTimeout(q.getJobCounts('waiting', 'active', 'delayed', 'prioritized', 'failed'), 5000);
    return out;
  }

  /** Seconds the oldest waiting job of each queue has waited (0 when none waits). */
  async oldestWaitingAgeSeconds(): Promise<Record<string, number>> {
    const out: Record<string, number> = {};
    for (const q of this.all()) {
      const [oldest] = await withTimeout(q.getJobs(['waiting', 'prioritized'], 0, 0, true), 5000);
      out[q.name] = oldest ? Math.max(0, Math.round((Date.now() - oldest.timestamp) / 1000)) : 0;
    }
    return out;
  }

  /** Remove finished and failed jobs older than `olderThanMs` from every queue (retention). */
  async cleanOld(olderThanMs: number): Promise<number> {
    let n = 0;
    for (const q of this.all()) {
      for (const state of ['completed', 'failed'] as const) n += (await withTimeout(q.clean(olderThanMs, 10_000, state), 30_000)).length;
    }
    return n;
  }

  /** Delete every job of every queue under this prefix (demo and test clean-up only). */
  async obliterate(): Promise<void> {
    await Promise.all(this.all().map((q) => q.obliterate({ force: true })));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all(this.all().map((q) => q.close()));
  }
}

/** Whether the job is live; a finished or failed one is removed, so its id does not block a new job. */
async function liveOrCleared(queue: Queue, id: string): Promise<boolean> {
  const job = await queue.getJob(id);
  if (!job) return false;
  const state = await job.getState();
  if (state === 'waiting' || state === 'active' || state === 'delayed' || state === 'prioritized') return true;
  await job.remove().catch(() => {});
  return false;
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let t: NodeJS.Timeout;
  return Promise.race([
    p.finally(() => clearTimeout(t)),
    new Promise<T>((_, reject) => {
      t = setTimeout(() => reject(new Error('queue operation timed out')), ms);
    }),
  ]);
}
