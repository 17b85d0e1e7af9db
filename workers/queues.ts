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
import { Redis, type RedisOptions } from 'ioredis';
import { jobId, type Enqueuer, type PipelineStage } from '../gateway/core/pipeline.js';
import type { Logger } from '../gateway/core/logger.js';

export const STAGES: PipelineStage[] = ['decrypt', 'validate', 'ack'];
/** Accepted records are announced here (batch id only) for the downstream account service. */
export const HANDOFF_QUEUE = 'handoff';

export interface JobPayload {
  batchId: string;
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

/** ioredis options from a URL; workers need `maxRetriesPerRequest: null` (BullMQ). */
export function redisOptions(url: string, forWorker: boolean): RedisOptions {
  const u = new URL(url);
  const opts: RedisOptions = {
    host: u.hostname,
    port: Number(u.port || 6379),
    db: u.pathname.length > 1 ? Number(u.pathname.slice(1)) : 0,
    maxRetriesPerRequest: forWorker ? null : 1,
    // Producers fail fast while Redis is down: the upload is already durable in the ledger.
    enableOfflineQueue: forWorker,
    connectTimeout: 5000,
    retryStrategy: (times) => Math.min(times * 200, 5000),
  };
  if (u.username) opts.username = decodeURIComponent(u.username);
  if (u.password) opts.password = decodeURIComponent(u.password);
  if (u.protocol === 'rediss:') opts.tls = {};
  return opts;
}

export function createRedis(url: string, forWorker: boolean, log: Logger): Redis {
  const r = new Redis(redisOptions(url, forWorker));
  r.on('error', (err) => log.warn('redis connection error', { err }));
  return r;
}

/** Resolve true once the connection is ready, false after `ms` without it. */
export function waitForReady(r: Redis, ms: number): Promise<boolean> {
  if (r.status === 'ready') return Promise.resolve(true);
  return new Promise((resolve) => {
    const t = setTimeout(() => { r.off('ready', on); resolve(false); }, ms);
    const on = () => { clearTimeout(t); resolve(true); };
    r.once('ready', on);
  });
}

/** The producer side: one BullMQ Queue per stage on one shared connection. */
export class Queues implements Enqueuer {
  readonly queues: Record<PipelineStage, Queue<JobPayload>>;
  readonly handoff: Queue<JobPayload>;
  private closed = false;

  constructor(connection: Redis, readonly prefix: string, private readonly attempts: number) {
    const mk = (name: string) => {
      const q = new Queue<JobPayload>(name, { connection: connection as ConnectionOptions, prefix });
      q.on('error', () => {}); // connection errors are logged once, on the shared connection
      return q;
    };
    this.queues = { decrypt: mk('decrypt'), validate: mk('validate'), ack: mk('ack') };
    this.handoff = mk(HANDOFF_QUEUE);
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

  /** Delete every job of every queue under this prefix (demo and test clean-up only). */
  async obliterate(): Promise<void> {
    await Promise.all([...Object.values(this.queues), this.handoff].map((q) => q.obliterate({ force: true })));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all([...Object.values(this.queues), this.handoff].map((q) => q.close()));
  }
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
