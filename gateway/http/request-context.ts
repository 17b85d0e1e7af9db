/**
 * Per-request context: a random request id (in the `X-Request-Id` header, every log line and
 * every error body), a scoped logger, and one access-log line per request. The line names the
 * matched route pattern rather than the raw URL, so nothing a client typed into a path
 * reaches the log beyond a file name that passed validation.
 */
import { randomBytes } from 'node:crypto';
import type { RequestHandler, Response } from 'express';
import type { Logger } from '../core/logger.js';
import type { Partner } from '../core/ledger/index.js';
import type { ServiceIdentity } from '../admin/service-tokens.js';

export interface RequestLocals {
  requestId: string;
  log: Logger;
  /** Set by bearer-auth once the token is verified. */
  partner?: Partner;
  /** Set by the internal API's service-auth instead: which of Babybalance's systems calls. */
  service?: ServiceIdentity;
  tokenId?: string;
  /** A validated upload name, for the access log. */
  fileName?: string;
}

export function locals(res: Response): RequestLocals {
  return res.locals as RequestLocals;
}

export function requestIdOf(res: Response): string {
  return locals(res).requestId ?? 'unknown';
}

export function requestLog(res: Response): Logger {
  return locals(res).log;
}

export function requestContext(log: Logger): RequestHandler {
  return (req, res, next) => {
    const requestId = randomBytes(8).toString('hex');
    const l = locals(res);
    l.requestId = requestId;
    l.log = log.child({ requestId });
    res.setHeader('X-Request-Id', requestId);
    // Nothing the API returns may be kept by a shared cache.
    res.setHeader('Cache-Control', 'no-store');
    const started = process.hrtime.bigint();
    let logged = false;
    const done = () => {
      if (logged) return;
      logged = true;
      l.log.info('http request', {
        method: req.method,
        route: req.route?.path ?? null,
        status: res.statusCode,
        completed: res.writableFinished,
        ms: Number((process.hrtime.bigint() - started) / 1_000_000n),
        partner: l.partner?.id ?? null,
        ...(l.service ? { service: l.service.name } : {}),
        tokenId: l.tokenId ?? null,
        fileName: l.fileName ?? null,
        bytesIn: Number(req.headers['content-length'] ?? 0) || null,
      });
    };
    res.on('finish', done);
    res.on('close', done);
    next();
  };
}
