/**
 * Batch routes of the partner API. The upload streams the request body into
 * the same ingest core as SFTP — never buffered whole, the size limit enforced on every
 * chunk — and answers only once the file is durable (fsync, rename, ledger row).
 */
import { Router, type Request, type Response } from 'express';
import { createReadStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import type { Ledger } from '../../core/ledger/index.js';
import type { DataDir } from '../../core/data-dir.js';
import type { Lane } from '../../core/ledger/schema.js';
import { PgwError } from '../../core/errors.js';
import type { IngestService, UploadTarget } from '../../ingest/ingest-service.js';
import { classifyUploadName, isBatchId } from '../../core/file-names.js';
import { batchView, uploadView } from '../batch-view.js';
import { locals, requestLog } from '../request-context.js';

export interface BatchRouteDeps {
  ledger: Ledger;
  ingest: IngestService;
  dataDir: DataDir;
  uploadBytes: number;
}

/** Media types an OpenPGP file may be sent as; none (curl -T) counts as octet-stream. */
const UPLOAD_TYPES = new Set(['application/octet-stream', 'application/pgp-encrypted', 'application/pgp']);

function laneOf(req: Request): Lane {
  const t = req.query.test;
  if (t === undefined || t === 'false') return 'live';
  if (t === 'true') return 'test';
  throw new PgwError('http.bad_request', 'the test parameter must be true or false');
}

/** Refuse what we will not read, before reading any of the body. */
function checkUploadHeaders(req: Request, limit: number): void {
  const type = (req.headers['content-type'] ?? 'application/octet-stream').split(';')[0]!.trim().toLowerCase();
  if (!UPLOAD_TYPES.has(type)) throw new PgwError('http.unsupported_media_type');
  // We never decompress a request body: a gzip bomb is refused, not expanded.
  const enc = (req.headers['content-encoding'] ?? 'identity').trim().toLowerCase();
  if (enc !== 'identity') throw new PgwError('http.unsupported_media_type');
  const declared = req.headers['content-length'];
  if (declared !== undefined && Number(declared) > limit) throw new PgwError('limits.upload_size', undefined, { limit });
}

async function putBatch(d: BatchRouteDeps, req: Request, res: Response): Promise<void> {
  const partner = locals(res).partner!;
  const fileName = String(req.params.fileName);
  if (classifyUploadName(fileName) !== 'final') throw new PgwError('upload.name_invalid');
  locals(res).fileName = fileName;
  const lane = laneOf(req);
  checkUploadHeaders(req, d.uploadBytes);
  const target: UploadTarget = {
    partnerId: partner.id, lane, channel: 'https', fileName, sameNameIsRetry: true, logContext: { requestId: locals(res).requestId },
  };
  const upload = await d.ingest.open(target);
  // Only now ask an `Expect: 100-continue` client for the body.
  if (/100-continue/i.test(req.headers.expect ?? '')) res.writeContinue();
  let offset = 0;
  try {
    for await (const chunk of req) {
      await upload.write(offset, chunk as Buffer);
      offset += (chunk as Buffer).length;
    }
  } catch (err) {
    await d.ingest.abort(upload);
    throw err instanceof PgwError ? err : new PgwError('upload.incomplete');
  }
  if (!req.complete) {
    await d.ingest.abort(upload);
    throw new PgwError('upload.incomplete');
  }
  const result = await d.ingest.commit(target, upload);
  const batch = await d.ledger.batches.get(result.batchId);
  res.status(result.retried ? 200 : 202).location(`/v1/batches/${result.batchId}`).json(uploadView(batch!, result.retried));
}

/** The partner's own batch, or 404 — another partner's id looks exactly like an unknown one. */
async function ownBatch(d: BatchRouteDeps, req: Request, res: Response) {
  const id = String(req.params.batchId);
  const batch = isBatchId(id) ? await d.ledger.batches.get(id) : undefined;
  if (!batch || batch.partner_id !== locals(res).partner!.id) throw new PgwError('batch.not_found');
  return batch;
}

async function getBatch(d: BatchRouteDeps, req: Request, res: Response): Promise<void> {
  const batch = await ownBatch(d, req, res);
  const ack = await d.ledger.batches.getAck(batch.id);
  const push = ack ? await d.ledger.ackPushes.get(batch.id, ack.version) : undefined;
  const result = await d.ledger.handoffs.getResult(batch.id);
  const resultPush = result ? await d.ledger.resultPushes.get(batch.id, result.version) : undefined;
  res.json(batchView(batch, await d.ledger.batches.events(batch.id), ack, push, result, resultPush));
}

/**
 * Streams one encrypted outbound document (an ack or a result) with its identifying headers;
 * a complete GET (not HEAD) is a delivery receipt, recorded by `onDelivered`.
 */
async function sendDocument(
  req: Request, res: Response, batchId: string,
  doc: { kind: 'Ack' | 'Result'; version: number; sha256: string; outbox_name: string; blob: string },
  onDelivered: () => Promise<void>,
): Promise<void> {
  res.status(200);
  res.setHeader('Content-Type', 'application/pgp-encrypted');
  res.setHeader('Content-Disposition', `attachment; filename="${doc.outbox_name}"`);
  res.setHeader('ETag', `"${doc.sha256}"`);
  res.setHeader('X-Pgw-Batch-Id', batchId);
  res.setHeader(`X-Pgw-${doc.kind}-Version`, String(doc.version));
  res.setHeader(`X-Pgw-${doc.kind}-Sha256`, doc.sha256);
  await pipeline(createReadStream(doc.blob), res);
  if (req.method === 'GET') await onDelivered();
}

/** The newest ack; a complete GET (not HEAD) is a delivery receipt. */
async function getAck(d: BatchRouteDeps, req: Request, res: Response): Promise<void> {
  const batch = await ownBatch(d, req, res);
  const ack = await d.ledger.batches.getAck(batch.id);
  if (!ack) throw new PgwError('ack.not_ready');
  await sendDocument(req, res, batch.id, { kind: 'Ack', ...ack, blob: d.dataDir.ackBlob(batch.id, ack.version) }, async () => {
    await d.ledger.batches.markAckDownloaded(batch.id, ack.version, 'https');
    requestLog(res).info('ack downloaded', { batch: batch.id, version: ack.version, lane: batch.lane });
  });
}

/**
 * The newest result document (what the account service did with each accepted
 * record; README "Handing records on"); `result.not_ready` until the service reported. A complete GET is a delivery receipt.
 */
async function getResult(d: BatchRouteDeps, req: Request, res: Response): Promise<void> {
  const batch = await ownBatch(d, req, res);
  const result = await d.ledger.handoffs.getResult(batch.id);
  if (!result) throw new PgwError('result.not_ready');
  await sendDocument(req, res, batch.id, { kind: 'Result', ...result, blob: d.dataDir.resultBlob(batch.id, result.version) }, async () => {
    await d.ledger.handoffs.markResultDownloaded(batch.id, result.version, 'https');
    requestLog(res).info('result downloaded', { batch: batch.id, version: result.version });
  });
}

type Handler = (d: BatchRouteDeps, req: Request, res: Response) => Promise<void>;

/** Express 5 passes rejected promises to the error handler; this keeps the deps explicit. */
function route(d: BatchRouteDeps, h: Handler) {
  return (req: Request, res: Response) => h(d, req, res);
}

export function batchRoutes(d: BatchRouteDeps): Router {
  const r = Router({ caseSensitive: true, strict: true });
  r.put('/v1/batches/:fileName', route(d, putBatch));
  r.get('/v1/batches/:batchId', route(d, getBatch));
  r.get('/v1/batches/:batchId/ack', route(d, getAck));
  r.get('/v1/batches/:batchId/result', route(d, getResult));
  return r;
}
