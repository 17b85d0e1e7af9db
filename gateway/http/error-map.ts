/**
 * The one place where failures become HTTP answers on the partner API: its status table; the
 * error body, the framework errors and the final handler are shared with the internal API
 * (error-edge.ts). The body is `{ "error": { "code", "message", "requestId" } }`.
 */
import { PgwError, type ErrorCode } from '../core/errors.js';
import { errorEdge } from './error-edge.js';

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

const partnerEdge = errorEdge({ status: STATUS, realm: 'pgw', otherFrameworkError: () => new PgwError('http.bad_request') });

/** HTTP status for a code: the table above, else 400 for client-side scopes and 500 otherwise. */
export const httpStatusFor = partnerEdge.statusFor;
/** Write the error body. */
export const sendError = partnerEdge.send;
/** The final error handler of the partner app. */
export const errorHandler = partnerEdge.handler;
