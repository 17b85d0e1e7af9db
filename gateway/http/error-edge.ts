/**
 * How failures become HTTP answers, shared by the partner API and the internal API. Each API
 * declares only what it decides itself (its status table, its 401 realm, which details its
 * callers may see, how a framework error reads); its error-map.ts says so. Services throw
 * {@link PgwError}s with stable codes; here the status is picked and the one error body
 * shape, `{ "error": { "code", "message", "requestId", "details"? } }`, written. Anything else
 * (a library error, a bug) is a 500 `internal.error` whose body says nothing about it, and
 * whose log line goes through the allow-list serialiser (library messages may quote input;
 * Express's own handler would print stacks and, for body-parser errors, the raw body).
 */
import type { ErrorRequestHandler, Response } from 'express';
import { ERROR_CODES, isPgwError, PgwError, type ErrorCode } from '../core/errors.js';
import { serializeError } from '../core/logger.js';
import { requestLog, requestIdOf } from './request-context.js';

/** What one API decides about its errors. */
export interface ErrorEdge {
  /** Codes whose status is not the scope default (400 for client-side scopes, 500 otherwise). */
  status: Partial<Record<ErrorCode, number>>;
  /** The realm a 401 names in WWW-Authenticate. */
  realm: string;
  /** Codes whose details the caller sees (safe facts only); none unless named. */
  shownDetails?: ReadonlySet<ErrorCode>;
  /** The API's own message for a framework error mapped to one of these codes. */
  frameworkMessages?: Partial<Record<ErrorCode, string>>;
  /** What any other 4xx of Express or its parsers becomes (their messages may quote the body). */
  otherFrameworkError: () => PgwError;
}

/** The codes Express's and body-parser's 4xx statuses stand for on every API. */
const FRAMEWORK_CODES: Partial<Record<number, ErrorCode>> = {
  413: 'limits.upload_size',
  415: 'http.unsupported_media_type',
  408: 'http.timeout',
};

/** The status function, the body writer and the final error handler of one API. */
export function errorEdge(edge: ErrorEdge) {
  const statusFor = (code: ErrorCode): number => {
    const s = edge.status[code];
    if (s) return s;
    const scope = ERROR_CODES[code].scope;
    return scope === 'upload' || scope === 'api' || scope === 'batch' || scope === 'record' ? 400 : 500;
  };

  /** `message` is the registry's text unless the error carries a safe one. */
  const send = (res: Response, err: PgwError): void => {
    const status = statusFor(err.code);
    if (status === 401) res.setHeader('WWW-Authenticate', `Bearer realm="${edge.realm}"`);
    const details = edge.shownDetails?.has(err.code) && Object.keys(err.details).length > 0 ? { details: err.details } : {};
    res.status(status).json({ error: { code: err.code, message: err.message, requestId: requestIdOf(res), ...details } });
  };

  /** Errors Express or its parsers raise carry a 4xx `status`; they never reach the client as text. */
  const fromFramework = (err: unknown): PgwError | null => {
    const status = (err as { status?: unknown; statusCode?: unknown }).status ?? (err as { statusCode?: unknown }).statusCode;
    if (typeof status !== 'number' || status < 400 || status >= 500) return null;
    const code = FRAMEWORK_CODES[status];
    return code ? new PgwError(code, edge.frameworkMessages?.[code]) : edge.otherFrameworkError();
  };

  /** A registry error as it is, a framework error through `fromFramework`, anything else `internal.error` (logged). */
  const handler: ErrorRequestHandler = (err: unknown, req, res, _next) => {
    const pgw = isPgwError(err) ? err : fromFramework(err);
    const log = requestLog(res);
    if (!pgw) log.error('request failed', { err: serializeError(err) });
    else if (statusFor(pgw.code) >= 500) log.warn('request failed', { code: pgw.code, err: serializeError(pgw.cause ?? pgw) });
    if (res.headersSent) {
      res.destroy();
      return;
    }
    // A body we stopped reading must not be read as the next request: close after answering.
    if (!req.complete) res.setHeader('Connection', 'close');
    send(res, pgw ?? new PgwError('internal.error'));
  };

  return { statusFor, send, handler };
}
