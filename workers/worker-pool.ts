/**
 * BullMQ workers for the three stages, the result documents and the webhook push, in one process. The single
 * place where a stage's failure is mapped to queue behaviour: retryable errors are thrown
 * (BullMQ retries with backoff); when the last attempt of decrypt/validate fails, the batch
 * is rejected with `internal.processing_failed` so the partner still gets an ack; a push
 * that cannot succeed by retrying (host not allowed, redirect) fails at once, and a push
 * out of attempts is recorded as given up.
 */
import { Worker, UnrecoverableError, type Job, type ConnectionOptions } from 'bullmq';
import type { PipelineStage } from '../gateway/core/pipeline.js';
import { PgwError } from '../gateway/core/errors.js';
import { isBatchId, isDocumentId } from '../gateway/core/file-names.js';
import { DELIVER_QUEUE, RESULT_QUEUE, type DeliverPayload, type JobPayload, type ResultPayload } from './queues.js';
import { workerError, type RedisConnection } from '../gateway/core/redis/connection.js';
import { queueKeyPrefix } from '../gateway/core/redis/key-names.js';
import { giveUpDelivery, runDeliverStage } from './deliver-stage.js';
import { runDecryptStage } from './decrypt-stage.js';
import { runValidateStage } from './validate-stage.js';
import { runAckStage } from './ack-stage.js';
import { runResultStage } from './result-stage.js';
import { rejectBatch, type StageContext } from './stage-context.js';

const PROCESSORS: Record<PipelineStage, (ctx: StageContext, batchId: string) => Promise<void>> = {
  decrypt: runDecryptStage,
  validate: runValidateStage,
  ack: runAckStage,
};

export class WorkerPool {
  private readonly workers: Worker[] = [];
  private closed = false;
  /**
   * Runs in progress by job id. A job whose lock lapsed while its run still goes on (a stage
   * that held the event loop longer than the lock duration) is handed out again by BullMQ's
   * stalled check, possibly to another slot of this very process: the redelivery waits for
   * the first run instead of running the same stage on the same batch twice at once.
   */
  private readonly running = new Map<string, Promise<void>>();

  /** `configuredPrefix`: `PGW_QUEUE_PREFIX` as configured (the keys carry it as a hash tag). */
  constructor(private readonly ctx: StageContext, private readonly connection: RedisConnection, configuredPrefix: string) {
    const w = ctx.config.workers;
    const prefix = queueKeyPrefix(configuredPrefix);
    // The same connection, key prefix and lock timing for every queue this pool serves.
    const options = (maxStalledCount?: number) => ({
      connection: connection as ConnectionOptions,
      prefix,
      concurrency: w.concurrency,
      lockDuration: w.lockDurationMs,
      stalledInterval: w.stalledIntervalMs,
      ...(maxStalledCount === undefined ? {} : { maxStalledCount }),
      autorun: true,
    });
    for (const stage of Object.keys(PROCESSORS) as PipelineStage[]) {
      const worker = new Worker<JobPayload>(stage, (job) => this.process(stage, job), options(5));
      worker.on('error', workerError(ctx.log, stage));
      worker.on('failed', (job, err) => void this.onFailed(stage, job, err));
      this.workers.push(worker as Worker);
    }
    const deliver = new Worker<DeliverPayload>(DELIVER_QUEUE, (job) => this.deliver(job), options());
    deliver.on('error', workerError(ctx.log, 'deliver'));
    deliver.on('failed', (job, err) => void this.onDeliverFailed(job, err));
    this.workers.push(deliver as Worker);
    const result = new Worker<ResultPayload>(RESULT_QUEUE, (job) => this.result(job), options(5));
    result.on('error', workerError(ctx.log, 'result'));
    // A result that keeps failing (no usable partner key) stays confirmed and unreleased:
    // the reconciler queues it again, and the console shows it waiting.
    result.on('failed', (job, err) => ctx.log.warn('stage failed', { stage: 'result', batch: job?.data.batchId, attempt: job?.attemptsMade, err }));
    this.workers.push(result as Worker);
  }

  private async result(job: Job<ResultPayload>): Promise<void> {
    const { batchId, version } = job.data ?? {};
    if (typeof batchId !== 'string' || !isBatchId(batchId) || !Number.isInteger(version)) {
      this.ctx.log.warn('result job without valid ids dropped', { job: job.id });
      return;
    }
    const key = job.id ?? `${batchId}-result-v${version}`;
    const earlier = this.running.get(key);
    const run = (earlier ?? Promise.resolve()).catch(() => {}).then(() => runResultStage(this.ctx, batchId, version));
    this.running.set(key, run);
    try {
      await run;
    } finally {
      if (this.running.get(key) === run) this.running.delete(key);
    }
  }

  private async deliver(job: Job<DeliverPayload>): Promise<void> {
    const { batchId, version, kind = 'ack' } = job.data ?? {};
    const idOk = typeof batchId === 'string' && (kind === 'document' ? isDocumentId(batchId) : isBatchId(batchId));
    if (!idOk || !Number.isInteger(version) || (kind !== 'ack' && kind !== 'result' && kind !== 'document')) {
      this.ctx.log.warn('deliver job without valid ids dropped', { job: job.id });
      return;
    }
    try {
      await runDeliverStage(this.ctx, batchId, version, kind);
    } catch (err) {
      // Retrying cannot fix a host that is not allowed, a bad URL or a redirect.
      if (err instanceof PgwError && !err.retryable) throw new UnrecoverableError(err.code);
      throw err;
    }
  }

  private async onDeliverFailed(job: Job<DeliverPayload> | undefined, err: Error): Promise<void> {
    if (!job) return;
    const final = err instanceof UnrecoverableError || job.attemptsMade >= (job.opts.attempts ?? 1);
    if (!final) return;
    const code = err instanceof PgwError ? err.code : err instanceof UnrecoverableError ? err.message : 'webhook.network';
    try {
      await giveUpDelivery(this.ctx, job.data.batchId, job.data.version, code, job.data.kind ?? 'ack');
    } catch (e) {
      this.ctx.log.error('could not record a failed push', { batch: job.data.batchId, err: e });
    }
  }

  private async process(stage: PipelineStage, job: Job<JobPayload>): Promise<void> {
    const batchId = job.data?.batchId;
    if (typeof batchId !== 'string' || !isBatchId(batchId)) {
      this.ctx.log.warn('job without a valid batch id dropped', { stage, job: job.id });
      return;
    }
    const key = job.id ?? `${batchId}-${stage}`;
    const earlier = this.running.get(key);
    if (earlier) this.ctx.log.warn('job redelivered while still running here; waiting for the first run', { stage, batch: batchId });
    // Chained, so that any number of redeliveries run one after the other.
    const run = (earlier ?? Promise.resolve()).catch(() => {}).then(() => PROCESSORS[stage](this.ctx, batchId));
    this.running.set(key, run);
    try {
      await run;
    } finally {
      if (this.running.get(key) === run) this.running.delete(key);
    }
  }

  private async onFailed(stage: PipelineStage, job: Job<JobPayload> | undefined, err: Error): Promise<void> {
    if (!job) return;
    const batchId = job.data.batchId;
    const final = job.attemptsMade >= (job.opts.attempts ?? 1);
    this.ctx.log.warn('stage failed', { stage, batch: batchId, attempt: job.attemptsMade, final, err });
    if (!final || stage === 'ack') return; // the ack stage keeps being retried by the reconciler
    try {
      const batch = await this.ctx.ledger.batches.get(batchId);
      if (batch && batch.stage === stage) {
        await rejectBatch(this.ctx, batch, stage, new PgwError('internal.processing_failed'));
      }
    } catch (e) {
      this.ctx.log.error('could not reject a failed batch; reconciler will retry', { batch: batchId, err: e });
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    // Waits for running jobs to finish (SIGTERM: nothing half-done is abandoned). With Redis
    // away none can finish (each ends with a Redis write) and the wait would never end: then
    // the workers stop at once; the jobs' locks lapse and they run again later.
    await Promise.all(this.workers.map((w) => w.close(this.connection.status !== 'ready')));
  }
}
