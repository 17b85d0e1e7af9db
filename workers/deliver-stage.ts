/**
 * Push an ack or a result document to the partner's webhook (when one is registered): POST
 * the signed, encrypted file with its batch id, version and sha-256 in headers
 * (`X-Pgw-Document-Type` says which). A 2xx answer is the delivery receipt. Each attempt is
 * recorded in the ledger; retries (exponential backoff with jitter, a bounded number of
 * attempts) are BullMQ's, decided in worker-pool.ts from the error's `retryable` flag. Only
 * the newest version of a batch's ack (or result) is pushed.
 */
import { promises as fsp } from 'node:fs';
import { PgwError, isPgwError } from '../gateway/core/errors.js';
import type { AckPushRepo } from '../gateway/core/ledger/ack-pushes.js';
import type { StageContext } from './stage-context.js';
import type { DeliveryKind } from './queues.js';
import { pushToWebhook } from './webhook-client.js';
import { checkWebhookTarget, parseWebhookUrl, webhookHost } from '../gateway/core/webhook-target.js';
import { withdrawForRevokedKeys } from '../gateway/admin/outbound-documents.js';

/** What is pushed for one (batch, version, kind): its file, headers and bookkeeping; null when gone or superseded. */
interface Document {
  blob: string;
  headers: Record<string, string>;
  pushes: AckPushRepo;
  partnerId: string;
}

async function documentOf(ctx: StageContext, batchId: string, version: number, kind: DeliveryKind): Promise<Document | null> {
  const batch = await ctx.ledger.batches.get(batchId);
  if (!batch) return null;
  if (kind === 'result') {
    const handoff = await ctx.ledger.handoffs.get(batchId);
    const result = await ctx.ledger.handoffs.getResult(batchId, version);
    if (!handoff || !result || handoff.version !== version) return null; // the newer version has its own job
    return {
      blob: ctx.dataDir.resultBlob(batchId, version), pushes: ctx.ledger.resultPushes, partnerId: batch.partner_id,
      headers: {
        'x-pgw-document-type': 'result', 'x-pgw-batch-id': batchId, 'x-pgw-result-version': String(version),
        'x-pgw-result-sha256': result.sha256, 'x-pgw-file-name': result.outbox_name,
      },
    };
  }
  const ack = await ctx.ledger.batches.getAck(batchId, version);
  if (!ack || batch.ack_version !== version) return null;
  return {
    blob: ctx.dataDir.ackBlob(batchId, version), pushes: ctx.ledger.ackPushes, partnerId: batch.partner_id,
    headers: {
      'x-pgw-document-type': 'ack', 'x-pgw-batch-id': batchId, 'x-pgw-ack-version': String(version),
      'x-pgw-ack-sha256': ack.sha256, 'x-pgw-file-name': ack.outbox_name,
    },
  };
}

export async function runDeliverStage(ctx: StageContext, batchId: string, version: number, kind: DeliveryKind = 'ack'): Promise<void> {
  if (kind === 'document') return pushDocument(ctx, batchId);
  const doc = await documentOf(ctx, batchId, version, kind);
  if (!doc) return;
  const done = await doc.pushes.get(batchId, version);
  if (done?.delivered_at || done?.failed_at) return;
  if (done && done.attempts >= ctx.config.webhooks.attempts) {
    // Out of attempts but not recorded as such (the process died before it could say so).
    await giveUpDelivery(ctx, batchId, version, done.last_code ?? 'webhook.network', kind);
    return;
  }
  const partner = await ctx.ledger.partners.get(doc.partnerId);
  if (!partner?.webhook_url || partner.status !== 'active') return; // stays pending for download
  const log = ctx.log.child({ partner: partner.id, batch: batchId, stage: 'deliver', document: kind });

  let host = 'invalid';
  try {
    const url = parseWebhookUrl(partner.webhook_url);
    host = webhookHost(url);
    const { checkResolved } = checkWebhookTarget(url, ctx.config.webhooks.allowedHosts);
    const body = await fsp.readFile(doc.blob);
    const status = await pushToWebhook(url, body, { 'content-type': 'application/pgp-encrypted', ...doc.headers },
      { timeoutMs: ctx.config.webhooks.timeoutMs, ca: await readCa(ctx.config.webhooks.caFile), checkResolved });
    await doc.pushes.recordAttempt(batchId, version, host, { status, code: null, delivered: true });
    log.info(`${kind} pushed`, { version, status, host });
  } catch (err) {
    const e = isPgwError(err) ? err : new PgwError('webhook.network', undefined, {}, { cause: err });
    const status = typeof e.details.status === 'number' ? e.details.status : null;
    await doc.pushes.recordAttempt(batchId, version, host, { status, code: e.code, delivered: false });
    log.warn(`${kind} push failed`, { version, code: e.code, status, host, retryable: e.retryable });
    throw e;
  }
}

/** Record that no more attempts will be made (called once the queue gives up). */
export async function giveUpDelivery(ctx: StageContext, batchId: string, version: number, code: string, kind: DeliveryKind = 'ack'): Promise<void> {
  if (kind === 'document') {
    await ctx.ledger.documents.markPushFailed(batchId, code);
    ctx.log.warn('document push given up', { document: batchId, code });
    return;
  }
  const pushes = kind === 'result' ? ctx.ledger.resultPushes : ctx.ledger.ackPushes;
  const row = await pushes.get(batchId, version);
  await pushes.markFailed(batchId, version, row?.host ?? 'invalid', code);
  ctx.log.warn(`${kind} push given up`, { batch: batchId, version, code });
}

/**
 * Push an outbound document (README "Sending documents to partners") with `X-Pgw-Document-Type: document`, its id,
 * sha-256 and file name; a 2xx is the delivery receipt. A document already picked up, closed
 * (withdrawn, expired) or encrypted to a key revoked since is not pushed.
 */
async function pushDocument(ctx: StageContext, documentId: string): Promise<void> {
  const doc = await ctx.ledger.documents.get(documentId);
  if (!doc || doc.closed_at || !doc.published_at || doc.pushed_at || doc.push_failed_at || doc.first_downloaded_at) return;
  if ((await withdrawForRevokedKeys(ctx, doc.partner_id)).includes(doc.id)) return;
  if (doc.push_attempts >= ctx.config.webhooks.attempts) {
    await giveUpDelivery(ctx, documentId, 1, doc.push_last_code ?? 'webhook.network', 'document');
    return;
  }
  const partner = await ctx.ledger.partners.get(doc.partner_id);
  if (!partner?.webhook_url || partner.status !== 'active') return; // stays pending for download
  const log = ctx.log.child({ partner: partner.id, document: documentId, stage: 'deliver' });
  let host = 'invalid';
  try {
    const url = parseWebhookUrl(partner.webhook_url);
    host = webhookHost(url);
    const { checkResolved } = checkWebhookTarget(url, ctx.config.webhooks.allowedHosts);
    const body = await fsp.readFile(ctx.dataDir.documentBlob(doc.id));
    const status = await pushToWebhook(url, body, {
      'content-type': 'application/pgp-encrypted', 'x-pgw-document-type': 'document', 'x-pgw-document-id': doc.id,
      'x-pgw-document-sha256': doc.sha256, 'x-pgw-file-name': doc.outbox_name,
    }, { timeoutMs: ctx.config.webhooks.timeoutMs, ca: await readCa(ctx.config.webhooks.caFile), checkResolved });
    await ctx.ledger.documents.recordPush(doc.id, { delivered: true, code: null });
    log.info('document pushed', { status, host });
  } catch (err) {
    const e = isPgwError(err) ? err : new PgwError('webhook.network', undefined, {}, { cause: err });
    await ctx.ledger.documents.recordPush(doc.id, { delivered: false, code: e.code });
    log.warn('document push failed', { code: e.code, host, retryable: e.retryable });
    throw e;
  }
}

let caCache: { file: string; pem: string } | null = null;
async function readCa(file: string | null): Promise<string | null> {
  if (!file) return null;
  if (caCache?.file !== file) caCache = { file, pem: await fsp.readFile(file, 'utf8') };
  return caCache.pem;
}
