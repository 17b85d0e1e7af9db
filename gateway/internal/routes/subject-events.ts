/**
 * `GET /internal/v1/subject-events?after=<seq>&limit=` (scope `subjects`; AVG
 * art. 19): erasures and corrections of records already handed on, oldest first, for the
 * account service to apply. Append-only; `next` is the cursor for the following page. A
 * correction carries its new values: they leave the sealed ledger row only here.
 */
import { Router, type Request, type Response } from 'express';
import { PgwError } from '../../core/errors.js';
import type { Ledger } from '../../core/ledger/index.js';
import type { DataKeys } from '../../core/sealed-blob.js';
import { SubjectEventRepo } from '../../core/ledger/subject-events.js';
import { requireScope } from '../service-auth.js';

export function subjectEventRoutes(d: { ledger: Ledger; dataKeys: DataKeys }): Router {
  const r = Router({ caseSensitive: true, strict: true });
  r.get('/internal/v1/subject-events', requireScope('subjects'), (req: Request, res: Response, next) => {
    (async () => {
      const { after: afterRaw, limit: limitRaw } = req.query;
      const after = afterRaw === undefined ? 0 : Number(afterRaw);
      if (!Number.isSafeInteger(after) || after < 0) throw new PgwError('http.bad_request', 'after must be a non-negative integer (the seq of the last event seen)');
      const limit = limitRaw === undefined ? 100 : Number(limitRaw);
      if (!Number.isInteger(limit) || limit < 1 || limit > 1000) throw new PgwError('http.bad_request', 'limit must be an integer from 1 to 1000');
      const events = await new SubjectEventRepo(d.ledger.handle, d.dataKeys).list(after, limit);
      res.setHeader('Cache-Control', 'no-store');
      res.json({ events, next: events.length ? events[events.length - 1]!.seq : after });
    })().catch(next);
  });
  return r;
}
