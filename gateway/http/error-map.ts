/**
 * The one place where failures become HTTP answers on the partner API. Services throw
 * {@link PgwError}s with stable codes; this file picks the status and writes the one error
 * body shape, `{ "error": { "code", "message", "requestId" } }`. Anything else (a library
 * error, a bug) is a 500 `internal.error` whose body says nothing about it, and whose log
 * line goes through the allow-list serialiser (library messages may quote input; Express's
 * own handler would print stacks and, for body-parser errors, the raw body).
 */
import type { ErrorRequestHandler, Response } from 'express';
import { ERROR_CODES, isPgwError, PgwError, type ErrorCode } from '../core/errors.js';
import { serializeError } from '../core/logger.js';
import { requestLog, requestIdOf } from './request-context.js';

const STATUS: Partial<Record<ErrorCode, number>> = {
  'auth.unauthorized': 401,
  'auth.client_certificate': 401,
  'partner.disabled': 403,
  'http.not_found': 404,
  'batch.not_found': 404,
  'ack.not_ready': 404,
  'result.not_ready': 404,
  'document.not_found': 404,
  'http.method_not_allowed': 405,
  'http.timeout': 408,
  'limits.upload_size': 413,
  'http.unsupported_media_type': 415,
  'http.rate_limited': 429,
  'http.bad_request': 400,
  'upload.name_invalid': 400,
  'upload.incomplete': 400,
  'key.invalid': 400,
  'key.weak': 400,
  'key.exists': 409,
  'key.submission_duplicate': 409,
  'key.submission_too_large': 413,
  'upload.storage_failed': 503,
  'internal.error': 500,
};

/** HTTP status for a code: the table above, else 400 for client-side scopes and 500 otherwise. */
export function httpStatusFor(code: ErrorCode): number {
  const s = STATUS[code];
  if (s) return s;
  const scope = ERROR_CODES[code].scope;
  return scope === 'upload' || scope === 'api' || scope === 'batch' || scope === 'record' ? 400 : 500;
}

/** Write the error body. `message` is the registry's text unless the error carries a safe one. */
export function sendError(res: Response, err: PgwError): void {
  const status = httpStatusFor(err.code);
  if (status === 401) res.setHeader('WWW-Authenticate', 'Bearer realm="pgw"');
  res.status(status).json({ error: { code: err.code, message: err.message, requestId: requestIdOf(res) } });
}

/** Errors Express or its parsers raise carry a 4xx `status`; they never reach the client as text. */
function fromFramework(err: unknown): PgwError | null {
  const status = (err as { status?: unknown; statusCode?: unknown }).status ?? (err as { statusCode?: unknown }).statusCode;
  if (typeof status !== 'number' || status < 400 || status >= 500) return null;
  if (status === 413) return new PgwError('limits.upload_size');
  if (status === 415) return new PgwError('http.unsupported_media_type');
  if (status === 408) return new PgwError('http.timeout');
  return new PgwError('http.bad_request');
}

/**
 * The final error handler of an API, from that API's own mapping: a registry error as it is,
 * an Express/parser error through `fromFramework`, anything else `internal.error` (logged).
 */
export function makeErrorHandler(edge: {
  fromFramework: (err: unknown) => PgwError | null;
  statusFor: (code: PgwError['code']) => number;
  send: (res: Response, err: PgwError) => void;
}): ErrorRequestHandler {
  return (err: unknown, req, res, _next) => {
    const pgw = isPgwError(err) ? err : edge.fromFramework(err);
    const log = requestLog(res);
    if (!pgw) log.error('request failed', { err: serializeError(err) });
    else if (edge.statusFor(pgw.code) >= 500) log.warn('request failed', { code: pgw.code, err: serializeError(pgw.cause ?? pgw) });
    if (res.headersSent) {
      res.destroy();
      return;
    }
    // A body we stopped reading must not be read as the next request: close after answering.
    if (!req.complete) res.setHeader('Connection', 'close');
    edge.send(res, pgw ?? new PgwError('internal.error'));
  };
}

/** The final error handler of the partner app. */
export const errorHandler = makeErrorHandler({ fromFramework, statusFor: httpStatusFor, send: sendError });
