/** `GET /v1/acks` (acks of either channel, optionally only those not yet picked up) and `GET /v1/keys/gateway`. */
import { Router, type Request, type Response } from 'express';
import type { Ledger } from '../../core/ledger/index.js';
import { PgwError } from '../../core/errors.js';
import { ackListView } from '../batch-view.js';
import { locals } from '../request-context.js';

export interface InfoRouteDeps {
  ledger: Ledger;
  /** Armored public keys the partner should encrypt to: the active one and any next one. */
  gatewayPublicKeys: () => Promise<string>;
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
  return r;
}
