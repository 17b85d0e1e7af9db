/**
 * Handoff routes of the internal API (README "Handing records on"), scope `handoff`:
 * - `GET  /internal/v1/handoffs?state=&limit=&after=`  live-lane handoffs, oldest first (cursor: `after` = the last batch id seen)
 * - `GET  /internal/v1/handoffs/{batchId}`             one handoff
 * - `GET  /internal/v1/handoffs/{batchId}/records`     the accepted records, streamed; the version is then taken
 * - `POST /internal/v1/handoffs/{batchId}/outcome`     the outcome of every record: 200 once recorded, 200 again for the same body, 409 for another
 */
import express, { Router, type Request, type Response } from 'express';
import { once } from 'node:events';
import { PgwError } from '../../core/errors.js';
import { isBatchId } from '../../core/file-names.js';
import {
  getHandoff, handoffView, openRecords, overdueBefore, recordOutcome, type HandoffDeps,
} from '../../admin/handoffs.js';
import { requireScope, serviceActor } from '../service-auth.js';
import { requestLog } from '../../http/request-context.js';

export interface HandoffRouteDeps extends HandoffDeps {
  maxBodyBytes: number;
}

const STATES = new Set(['ready', 'taken', 'confirmed', 'overdue']);

async function list(d: HandoffRouteDeps, req: Request, res: Response): Promise<void> {
  const { state, limit: limitRaw, after } = req.query;
  if (state !== undefined && (typeof state !== 'string' || !STATES.has(state))) throw new PgwError('http.bad_request', 'state must be ready, taken, confirmed or overdue');
  const limit = limitRaw === undefined ? 100 : Number(limitRaw);
  if (!Number.isInteger(limit) || limit < 1 || limit > 1000) throw new PgwError('http.bad_request', 'limit must be an integer from 1 to 1000');
  let cursor: { readyAt: string; batchId: string } | undefined;
  if (after !== undefined) {
    const from = typeof after === 'string' && isBatchId(after) ? await d.ledger.handoffs.get(after) : undefined;
    if (!from) throw new PgwError('http.bad_request', 'after must be the batch id of a handoff listed before');
    cursor = { readyAt: from.ready_at, batchId: from.batch_id };
  }
  const cutoff = overdueBefore(d);
  const rows = await d.ledger.handoffs.list({
    ...(state ? { state: state as 'ready' } : {}), overdueBefore: cutoff, limit, ...(cursor ? { after: cursor } : {}),
  });
  const next = rows.length === limit ? rows[rows.length - 1]!.batch_id : null;
  res.json({ handoffs: rows.map((r) => handoffView(r, cutoff)), next });
}

async function one(d: HandoffRouteDeps, req: Request, res: Response): Promise<void> {
  res.json(await getHandoff(d, String(req.params.batchId)));
}

/** Streams `{batchId, partner, version, schema, reference, records:[…]}` with backpressure; never the whole batch in memory. */
async function records(d: HandoffRouteDeps, req: Request, res: Response): Promise<void> {
  const r = await openRecords(d, String(req.params.batchId), serviceActor(res));
  const { head } = r;
  res.status(200).type('application/json');
  res.setHeader('X-Pgw-Handoff-Version', String(head.version));
  let gone = false;
  res.on('close', () => { gone = true; });
  const write = async (b: Buffer | string) => {
    if (!res.write(b)) await Promise.race([once(res, 'drain'), once(res, 'close')]);
  };
  await write(`{"batchId":${JSON.stringify(head.batchId)},"partner":${JSON.stringify(head.partner)},"version":${head.version},`
    + `"schema":${JSON.stringify(head.schema)},"reference":${JSON.stringify(head.reference)},"count":${head.records},"records":[`);
  let first = true;
  for await (const chunk of r.records) {
    if (gone) return; // the client left: nothing is marked taken
    const parts: Buffer[] = [];
    for (const rec of chunk) {
      if (!first) parts.push(Buffer.from(',\n'));
      parts.push(rec);
      first = false;
    }
    await write(Buffer.concat(parts));
  }
  if (gone) return;
  // Taken before the document closes: a service that read it all may report at once.
  await r.done();
  res.end(']}\n');
  requestLog(res).info('handoff records sent', { batch: head.batchId, version: head.version, records: head.records });
}

async function outcome(d: HandoffRouteDeps, req: Request, res: Response): Promise<void> {
  const r = await recordOutcome(d, String(req.params.batchId), req.body, serviceActor(res));
  requestLog(res).info('handoff outcome', { batch: r.view.batchId, version: r.view.version, status: r.status });
  res.status(200).json({ ...r.view, recorded: r.status === 'confirmed' ? 'now' : 'before' });
}

type Handler = (d: HandoffRouteDeps, req: Request, res: Response) => Promise<void>;
const route = (d: HandoffRouteDeps, h: Handler) => (req: Request, res: Response) => h(d, req, res);

export function handoffRoutes(d: HandoffRouteDeps): Router {
  const r = Router({ caseSensitive: true, strict: true });
  const scope = requireScope('handoff');
  const json = express.json({ limit: d.maxBodyBytes, strict: true, type: () => true });
  const jsonOnly = (req: Request, _res: Response, next: (err?: unknown) => void) => {
    const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
    const enc = (req.headers['content-encoding'] ?? 'identity').trim().toLowerCase();
    next(type === 'application/json' && enc === 'identity' ? undefined : new PgwError('http.unsupported_media_type', 'send the outcome as application/json, without Content-Encoding'));
  };
  r.get('/internal/v1/handoffs', scope, route(d, list));
  r.get('/internal/v1/handoffs/:batchId', scope, route(d, one));
  r.get('/internal/v1/handoffs/:batchId/records', scope, route(d, records));
  r.post('/internal/v1/handoffs/:batchId/outcome', scope, jsonOnly, json, route(d, outcome));
  return r;
}
