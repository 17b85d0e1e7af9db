/**
 * What every stage processor receives: the ledger, blobs, keys and the way to hand work on.
 * Built once per worker process in main.ts; tests build it by hand.
 */
import type { Ledger, Batch } from '../gateway/core/ledger/index.js';
import type { DataDir } from '../gateway/core/data-dir.js';
import type { DataKeys } from '../gateway/core/sealed-blob.js';
import type { Enqueuer } from '../gateway/core/pipeline.js';
import type { Logger } from '../gateway/core/logger.js';
import type { FaultHook } from '../gateway/core/faults.js';
import type { Config } from '../gateway/core/config.js';
import type { GatewayKeyring } from '../keys/gateway-keyring.js';
import { PgwError } from '../gateway/core/errors.js';
import { nowIso } from '../gateway/core/ledger/index.js';

export interface StageContext {
  /** The settings the stages read (limits and signature window, webhooks, worker timings). */
  config: Pick<Config, 'limits' | 'signature' | 'webhooks' | 'workers'>;
  ledger: Ledger;
  dataDir: DataDir;
  dataKeys: DataKeys;
  keyring: GatewayKeyring;
  enqueuer: Enqueuer;
  log: Logger;
  fault: FaultHook;
}

/**
 * Decide a batch as rejected before validation and move it to the ack stage. Used by decrypt
 * for every verdict on the bytes (bad signature, no key, bomb …): the partner still gets a
 * signed ack that says why.
 */
export async function rejectBatch(ctx: StageContext, batch: Batch, from: 'decrypt' | 'validate', err: PgwError): Promise<void> {
  const moved = await ctx.ledger.batches.advance(batch.id, from, 'ack', {
    outcome: 'rejected',
    error_code: err.code,
    error_detail: JSON.stringify({ message: err.message, ...err.details }),
    processed_at: nowIso(),
  }, { stage: from, outcome: 'error', code: err.code });
  if (moved) ctx.log.info('batch rejected', { partner: batch.partner_id, batch: batch.id, code: err.code, stage: from });
  await ctx.enqueuer.enqueue('ack', batch.id);
}
