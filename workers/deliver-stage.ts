/**
 * Push an ack to the partner's webhook (when one is registered): POST the signed, encrypted
 * ack file with its batch id, version and sha-256 in headers. A 2xx answer is the delivery
 * receipt. Each attempt is recorded in the ledger; retries (exponential backoff with jitter,
 * a bounded number of attempts) are BullMQ's, decided in worker-pool.ts from the error's
 * `retryable` flag. Only the newest ack version of a batch is pushed.
 */
import { promises as fsp } from 'node:fs';
import { PgwError, isPgwError } from '../gateway/core/errors.js';
import type { StageContext } from './stage-context.js';
import { pushToWebhook } from './webhook-client.js';
import { checkWebhookTarget, parseWebhookUrl, webhookHost } from '../gateway/core/webhook-target.js';

export async function runDeliverStage(ctx: StageContext, batchId: string, version: number): Promise<void> {
  const batch = await ctx.ledger.batches.get(batchId);
  const ack = batch ? await ctx.ledger.batches.getAck(batchId, version) : undefined;
  if (!batch || !ack || batch.ack_version !== version) return; // gone or superseded: the newer version has its own job
  const done = await ctx.ledger.ackPushes.get(batchId, version);
  if (done?.delivered_at || done?.failed_at) return;
  if (done && done.attempts >= ctx.config.webhooks.attempts) {
    // Out of attempts but not recorded as such (the process died before it could say so).
    await giveUpDelivery(ctx, batchId, version, done.last_code ?? 'webhook.network');
    return;
  }
  const partner = await ctx.ledger.partners.get(batch.partner_id);
  if (!partner?.webhook_url || partner.status !== 'active') return; // stays pending for download
  const log = ctx.log.child({ partner: partner.id, batch: batchId, stage: 'deliver' });

  let host = 'invalid';
  try {
    const url = parseWebhookUrl(partner.webhook_url);
    host = webhookHost(url);
    const { checkResolved } = checkWebhookTarget(url, ctx.config.webhooks.allowedHosts);
    const body = await fsp.readFile(ctx.dataDir.ackBlob(batchId, version));
    const status = await pushToWebhook(url, body, {
      'content-type': 'application/pgp-encrypted',
      'x-pgw-batch-id': batchId,
      'x-pgw-ack-version': String(version),
      'x-pgw-ack-sha256': ack.sha256,
      'x-pgw-file-name': ack.outbox_name,
    }, { timeoutMs: ctx.config.webhooks.timeoutMs, ca: await readCa(ctx.config.webhooks.caFile), checkResolved });
    await ctx.ledger.ackPushes.recordAttempt(batchId, version, host, { status, code: null, delivered: true });
    log.info('ack pushed', { version, status, host });
  } catch (err) {
    const e = isPgwError(err) ? err : new PgwError('webhook.network', undefined, {}, { cause: err });
    const status = typeof e.details.status === 'number' ? e.details.status : null;
    await ctx.ledger.ackPushes.recordAttempt(batchId, version, host, { status, code: e.code, delivered: false });
    log.warn('ack push failed', { version, code: e.code, status, host, retryable: e.retryable });
    throw e;
  }
}

/** Record that no more attempts will be made (called once the queue gives up). */
export async function giveUpDelivery(ctx: StageContext, batchId: string, version: number, code: string): Promise<void> {
  const row = await ctx.ledger.ackPushes.get(batchId, version);
  await ctx.ledger.ackPushes.markFailed(batchId, version, row?.host ?? 'invalid', code);
  ctx.log.warn('ack push given up', { batch: batchId, version, code });
}

let caCache: { file: string; pem: string } | null = null;
async function readCa(file: string | null): Promise<string | null> {
  if (!file) return null;
  if (caCache?.file !== file) caCache = { file, pem: await fsp.readFile(file, 'utf8') };
  return caCache.pem;
}
