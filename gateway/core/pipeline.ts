/**
 * The contract between the gateway and the workers: stage names and the enqueue function.
 * Jobs carry a batch id and nothing else; everything else is read from the ledger.
 */
export type PipelineStage = 'decrypt' | 'validate' | 'ack';

export interface Enqueuer {
  /** Idempotent per (stage, batch): job id `<batchId>-<stage>`. */
  enqueue(stage: PipelineStage, batchId: string): Promise<void>;
  /** Queue a webhook push of an ack (or result) version; absent where nothing is pushed (tests, benches). */
  enqueueDelivery?(batchId: string, version: number, kind?: 'ack' | 'result'): Promise<void>;
  /** Queue the making of a handoff version's result document; absent where none is made (tests, benches). */
  enqueueResult?(batchId: string, version: number): Promise<void>;
}

/** BullMQ job ids may not contain ':' nor be integers; ours are `<batchId>-<stage>`. */
export function jobId(stage: PipelineStage, batchId: string): string {
  return `${batchId}-${stage}`;
}
