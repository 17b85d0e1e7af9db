/**
 * The one place where failures become HTTP answers on the internal API (the partner API has
 * its own, gateway/http/error-map.ts; both answer through gateway/http/error-edge.ts). The body
 * shape is the same, `{ "error": { "code", "message", "requestId", "details"? } }`; `details` carries the safe
 * facts an outcome was refused for (record indexes, schema paths) — never record content.
 * Anything else (a library error, a bug) is a 500 `internal.error` that says nothing about it.
 */
import { PgwError, type ErrorCode } from '../core/errors.js';
import { errorEdge } from '../http/error-edge.js';

const STATUS: Partial<Record<ErrorCode, number>> = {
  'auth.unauthorized': 401,
  'auth.client_certificate': 401,
  'auth.scope': 403,
  'http.not_found': 404,
  'handoff.not_found': 404,
  'document.partner_unknown': 404,
  'document.not_found': 404,
  'http.method_not_allowed': 405,
  'http.timeout': 408,
  'handoff.withdrawn': 409,
  'handoff.superseded': 409,
  'handoff.not_taken': 409,
  'handoff.conflict': 409,
  'handoff.released': 410,
  'document.partner_disabled': 409,
  'document.no_partner_key': 409,
  'document.name_taken': 409,
  'limits.outbound_size': 413,
  'limits.upload_size': 413,
  'http.unsupported_media_type': 415,
  'http.rate_limited': 429,
  'internal.error': 500,
};

/** Details of these codes are shown to the service (they name records and schema paths, nothing else). */
const SHOWN_DETAILS = new Set<ErrorCode>([
  'outcome.invalid', 'outcome.unknown_value', 'outcome.unknown_record', 'outcome.duplicate_record', 'outcome.missing_records',
  'handoff.superseded', 'auth.scope',
]);

const internalEdge = errorEdge({
  status: STATUS,
  realm: 'pgw-internal',
  shownDetails: SHOWN_DETAILS,
  frameworkMessages: {
    'limits.upload_size': 'the request body is larger than PGW_INTERNAL_MAX_BODY_BYTES',
    'http.unsupported_media_type': 'send application/json',
  },
  // A body that is not JSON: body-parser's message quotes it, so only the code goes out.
  otherFrameworkError: () => new PgwError('outcome.invalid', 'the body is not valid JSON'),
});

export const internalErrorHandler = internalEdge.handler;
