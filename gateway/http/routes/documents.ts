/**
 * Outbound documents on the partner API (README "Sending documents to partners"): what Babybalance sent this partner.
 * - `GET /v1/documents?pending=true`  its documents (pending: not yet downloaded or pushed), newest first
 * - `GET /v1/documents/{documentId}`  the signed, encrypted file; a complete GET is the delivery receipt
 * A partner sees only its own documents: another partner's id is answered as unknown.
 */
import { Router, type Request, type Response } from 'express';
import { createReadStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import type { Ledger, OutboundDocument } from '../../core/ledger/index.js';
import type { DataDir } from '../../core/data-dir.js';
import type { Logger } from '../../core/logger.js';
import { PgwError } from '../../core/errors.js';
import { isDocumentId } from '../../core/file-names.js';
import { documentState, withdrawForRevokedKeys } from '../../admin/outbound-documents.js';
import { locals, requestLog } from '../request-context.js';

export interface DocumentRouteDeps {
  ledger: Ledger;
  dataDir: DataDir;
  log: Logger;
}

function partnerView(doc: OutboundDocument) {
  return {
    documentId: doc.id, fileName: doc.outbox_name, sha256: doc.sha256, createdAt: doc.published_at ?? doc.created_at,
    downloadedAt: doc.first_downloaded_at, pushedAt: doc.pushed_at, state: documentState(doc), links: { download: `/v1/documents/${doc.id}` },
  };
}

async function list(d: DocumentRouteDeps, req: Request, res: Response): Promise<void> {
  const pending = req.query.pending;
  if (pending !== undefined && pending !== 'true' && pending !== 'false') throw new PgwError('http.bad_request', 'pending must be true or false');
  const partnerId = locals(res).partner!.id;
  await withdrawForRevokedKeys(d, partnerId);
  const rows = await d.ledger.documents.list({ partnerId, pending: pending === 'true', limit: 500 });
  // Closed documents (withdrawn, expired) and ones not yet in the outbox are not offered.
  res.json({ documents: rows.filter((x) => !x.closed_at && x.published_at).map(partnerView) });
}

async function download(d: DocumentRouteDeps, req: Request, res: Response): Promise<void> {
  const id = String(req.params.documentId);
  const partnerId = locals(res).partner!.id;
  await withdrawForRevokedKeys(d, partnerId);
  const doc = isDocumentId(id) ? await d.ledger.documents.get(id) : undefined;
  if (!doc || doc.partner_id !== partnerId || doc.closed_at || !doc.published_at) throw new PgwError('document.not_found');
  res.status(200);
  res.setHeader('Content-Type', 'application/pgp-encrypted');
  res.setHeader('Content-Disposition', `attachment; filename="${doc.outbox_name}"`);
  res.setHeader('ETag', `"${doc.sha256}"`);
  res.setHeader('X-Pgw-Document-Id', doc.id);
  res.setHeader('X-Pgw-Document-Sha256', doc.sha256);
  await pipeline(createReadStream(d.dataDir.documentBlob(doc.id)), res);
  if (req.method === 'GET') {
    await d.ledger.documents.markDownloaded(doc.id, 'https');
    requestLog(res).info('document downloaded', { document: doc.id });
  }
}

type Handler = (d: DocumentRouteDeps, req: Request, res: Response) => Promise<void>;
const route = (d: DocumentRouteDeps, h: Handler) => (req: Request, res: Response) => h(d, req, res);

export function documentRoutes(d: DocumentRouteDeps): Router {
  const r = Router({ caseSensitive: true, strict: true });
  r.get('/v1/documents', route(d, list));
  r.get('/v1/documents/:documentId', route(d, download));
  return r;
}
