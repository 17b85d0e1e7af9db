/**
 * The daily retention run, as a BullMQ job scheduler: every worker process declares the same
 * scheduler id (so there is one schedule however many run) and can take the job. It runs
 * even when no batch arrives, which is what removes old queue jobs "without traffic".
 */
import { Queue, Worker, type ConnectionOptions } from 'bullmq';
import { workerError, type RedisConnection } from '../gateway/core/redis/connection.js';
import { queueKeyPrefix } from '../gateway/core/redis/key-names.js';
import type { Logger } from '../gateway/core/logger.js';
import { runRetention, type RetentionDeps } from './retention.js';

export const RETENTION_QUEUE = 'retention';
const DAY_MS = 86_400_000;

export class RetentionScheduler {
  private readonly queue: Queue;
  private readonly worker: Worker;
  private closed = false;

  /** `configuredPrefix`: `PGW_QUEUE_PREFIX` as configured (the keys carry it as a hash tag). */
  constructor(producer: RedisConnection, private readonly workerConnection: RedisConnection, configuredPrefix: string, deps: RetentionDeps, log: Logger, everyMs = DAY_MS) {
    const prefix = queueKeyPrefix(configuredPrefix);
    this.queue = new Queue(RETENTION_QUEUE, { connection: producer as ConnectionOptions, prefix });
    this.queue.on('error', () => {});
    this.worker = new Worker(RETENTION_QUEUE, async () => {
      await runRetention(deps);
    }, { connection: workerConnection as ConnectionOptions, prefix, concurrency: 1 });
    this.worker.on('error', workerError(log, 'retention'));
    this.worker.on('failed', (_job, err) => log.warn('retention run failed; the next one retries', { err }));
    this.queue.upsertJobScheduler('retention-daily', { every: everyMs }, { name: 'retention', opts: { removeOnComplete: 10, removeOnFail: 10 } })
      .catch((err: unknown) => log.warn('could not schedule retention (Redis away?); it is scheduled at the next start', { err }));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    // As in WorkerPool.close: with Redis away a run cannot finish, so do not wait for one.
    await this.worker.close(this.workerConnection.status !== 'ready');
    await this.queue.close();
  }
}
