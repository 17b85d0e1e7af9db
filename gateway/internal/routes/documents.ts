/**
 * Outbound document routes of the internal API (README "Sending documents to partners"), scope `outbound`:
 * - `POST /internal/v1/partners/{partnerId}/documents?name=<file name>`  the body, streamed into a
 *   signed, encrypted document for the partner: 202 `{documentId, sha256, …}` (a retry with the
 *   same name and bytes: the same document, 202 again)
 * - `GET  /internal/v1/documents/{documentId}`  its state (queued | published | downloaded | pushed |
 *   key_revoked | expired) with times
 */
import { Router, type Request, type Response } from 'express';
import { PgwError } from '../../core/errors.js';
import { isDocumentId } from '../../core/file-names.js';
import { documentView, sendDocument, withdrawForRevokedKeys, type SendDeps } from '../../admin/outbound-documents.js';
import { requireScope, serviceActor } from '../service-auth.js';
import { requestLog } from '../../http/request-context.js';

const PARTNER_ID = /^[a-z0-9][a-z0-9-]{1,39}$/;

async function post(d: SendDeps, req: Request, res: Response): Promise<void> {
  const partnerId = String(req.params.partnerId);
  if (!PARTNER_ID.test(partnerId)) throw new PgwError('document.partner_unknown');
  const name = req.query.name;
  if (typeof name !== 'string') throw new PgwError('document.name_invalid');
  // We never decompress a request body: a gzip bomb is refused, not expanded.
  const enc = (req.headers['content-encoding'] ?? 'identity').trim().toLowerCase();
  if (enc !== 'identity') throw new PgwError('http.unsupported_media_type', 'send the document without Content-Encoding');
  const length = req.headers['content-length'];
  const r = await sendDocument(d, {
    partnerId, name, body: req, actor: serviceActor(res), ...(length !== undefined && /^\d+$/.test(length) ? { declaredBytes: Number(length) } : {}),
  });
  requestLog(res).info('document accepted', { partner: partnerId, document: r.document.id, created: r.created });
  res.status(202).json({ ...documentView(r.document), created: r.created });
}

async function get(d: SendDeps, req: Request, res: Response): Promise<void> {
  const id = String(req.params.documentId);
  let doc = isDocumentId(id) ? await d.ledger.documents.get(id) : undefined;
  if (!doc) throw new PgwError('document.not_found');
  if (!doc.closed_at && (await withdrawForRevokedKeys(d, doc.partner_id)).includes(doc.id)) doc = await d.ledger.documents.get(id);
  res.json(documentView(doc!));
}

type Handler = (d: SendDeps, req: Request, res: Response) => Promise<void>;
const route = (d: SendDeps, h: Handler) => (req: Request, res: Response) => h(d, req, res);

export function documentRoutes(d: SendDeps): Router {
  const r = Router({ caseSensitive: true, strict: true });
  const scope = requireScope('outbound');
  r.post('/internal/v1/partners/:partnerId/documents', scope, route(d, post));
  r.get('/internal/v1/documents/:documentId', scope, route(d, get));
  return r;
}
