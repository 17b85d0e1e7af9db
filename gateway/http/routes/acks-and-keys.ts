/**
 * `GET /v1/acks` (acks of either channel, optionally only those not yet picked up),
 * `GET /v1/keys/gateway`, and `PUT /v1/keys`: partner self-service key rotation — the body is
 * the new public key exactly as the partner signed it, the `X-Pgw-Key-Signature` header the
 * base64 of the detached signature (`gpg --detach-sign`, binary or armored) made by a key of
 * the partner that is active now. The service (keys/partner-key-submission.ts) decides.
 */
import { Router, type Request, type Response } from 'express';
import type { Ledger } from '../../core/ledger/index.js';
import { PgwError } from '../../core/errors.js';
import type { PartnerKeySubmission, SubmitPartnerKeyInput } from '../../../keys/partner-key-submission.js';
import { MAX_SUBMITTED_KEY_BYTES, MAX_SUBMITTED_SIGNATURE_BYTES } from '../../../keys/partner-key-submission.js';
import { ackListView } from '../batch-view.js';
import { locals } from '../request-context.js';

export interface InfoRouteDeps {
  ledger: Ledger;
  /** Armored public keys the partner should encrypt to: the active one and any next one. */
  gatewayPublicKeys: () => Promise<string>;
  submitPartnerKey: (input: SubmitPartnerKeyInput) => Promise<PartnerKeySubmission>;
}

const KEY_TYPES = new Set(['application/pgp-keys', 'application/octet-stream', 'text/plain']);

async function putKey(d: InfoRouteDeps, req: Request, res: Response): Promise<void> {
  const type = (req.headers['content-type'] ?? 'application/octet-stream').split(';')[0]!.trim().toLowerCase();
  if (!KEY_TYPES.has(type) || (req.headers['content-encoding'] ?? 'identity') !== 'identity') throw new PgwError('http.unsupported_media_type');
  const sigHeader = String(req.headers['x-pgw-key-signature'] ?? '').trim();
  if (sigHeader.length > MAX_SUBMITTED_SIGNATURE_BYTES * 2) throw new PgwError('key.submission_too_large');
  const signature = sigHeader && /^[A-Za-z0-9+/=_-]+$/.test(sigHeader) ? Buffer.from(sigHeader, 'base64') : null;
  if (Number(req.headers['content-length'] ?? 0) > MAX_SUBMITTED_KEY_BYTES) throw new PgwError('key.submission_too_large');
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_SUBMITTED_KEY_BYTES) throw new PgwError('key.submission_too_large');
    chunks.push(chunk as Buffer);
  }
  const r = await d.submitPartnerKey({ partnerId: locals(res).partner!.id, armoredKey: Buffer.concat(chunks), signature, channel: 'https' });
  res.status(202).json({
    fingerprint: r.fingerprint, algorithm: r.algorithm, signedBy: r.signedBy, activatesAt: r.activatesAt, expiresAt: r.expiresAt,
  });
}

async function listAcks(d: InfoRouteDeps, req: Request, res: Response): Promise<void> {
  const pending = req.query.pending;
  if (pending !== undefined && pending !== 'true' && pending !== 'false') throw new PgwError('http.bad_request', 'pending must be true or false');
  const limitRaw = req.query.limit;
  const limit = limitRaw === undefined ? 100 : Number(limitRaw);
  if (!Number.isInteger(limit) || limit < 1 || limit > 1000) throw new PgwError('http.bad_request', 'limit must be an integer from 1 to 1000');
  const rows = await d.ledger.ackPushes.partnerAcks(locals(res).partner!.id, { pendingOnly: pending === 'true', limit });
  res.json(ackListView(rows));
}

async function gatewayKeys(d: InfoRouteDeps, _req: Request, res: Response): Promise<void> {
  res.type('application/pgp-keys').send(await d.gatewayPublicKeys());
}

export function infoRoutes(d: InfoRouteDeps): Router {
  const r = Router({ caseSensitive: true, strict: true });
  r.get('/v1/acks', (req, res) => listAcks(d, req, res));
  r.get('/v1/keys/gateway', (req, res) => gatewayKeys(d, req, res));
  r.put('/v1/keys', (req, res) => putKey(d, req, res));
  return r;
}
