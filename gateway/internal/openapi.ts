/**
 * The OpenAPI 3.1 document of the internal API, served at `/internal/v1/openapi.json` (the
 * partner API has its own). Schemas are JSON Schema 2020-12; the integration tests validate
 * every response they receive against it. The outcome body is the schema file the route
 * validates with (schemas/handoff-outcome.v1.json), so the two cannot differ.
 */
import { str, strOrNull, time, timeOrNull, batchId, batchIdParam, errorSchema, jsonRef, errorResponse, commonResponses, documentHead } from '../http/openapi-parts.js';
import { loadSchemaFile } from '../../schemas/compiled-schemas.js';

const count = { type: 'integer', minimum: 0 } as const;

const handoffProps = {
  batchId, partner: str, version: { type: 'integer', minimum: 1 }, state: { enum: ['ready', 'taken', 'confirmed', 'withdrawn', 'expired'] },
  overdue: { type: 'boolean' }, records: count, fileName: str, schema: strOrNull, reference: strOrNull,
  receivedAt: time, readyAt: time, takenAt: timeOrNull, confirmedAt: timeOrNull,
  outcome: {
    oneOf: [{ type: 'null' }, {
      type: 'object', additionalProperties: false, required: ['created', 'exists', 'failed'], properties: { created: count, exists: count, failed: count },
    }],
  },
  links: {
    type: 'object', additionalProperties: false, required: ['self', 'records', 'outcome'], properties: { self: str, records: str, outcome: str },
  },
} as const;

const documentId = { type: 'string', pattern: '^d-[0-9]{8}-[a-z0-9]{12}$' } as const;
const documentProps = {
  documentId, partner: str, name: str, fileName: { ...str, description: 'the outbox entry: <name>.pgp' },
  sha256: { type: 'string', pattern: '^[0-9a-f]{64}$', description: 'of the encrypted file' }, bytes: { ...count, description: 'plaintext bytes' },
  state: { enum: ['queued', 'published', 'downloaded', 'pushed', 'key_revoked', 'expired'], description: 'key_revoked: withdrawn, the key it was encrypted to was revoked before pickup; send it again' },
  createdAt: time, publishedAt: timeOrNull, downloadedAt: timeOrNull, downloadedVia: { enum: ['sftp', 'https', null] }, pushedAt: timeOrNull, closedAt: timeOrNull,
} as const;

const schemas = {
  Document: { type: 'object', additionalProperties: false, required: Object.keys(documentProps), properties: documentProps },
  DocumentSent: {
    type: 'object', additionalProperties: false, required: [...Object.keys(documentProps), 'created'],
    properties: { ...documentProps, created: { type: 'boolean', description: 'false: the same name and bytes were sent before; this is that document' } },
  },
  Error: errorSchema({ details: { type: 'object', description: 'for outcome refusals: the record indexes or the schema path at fault' } }),
  Handoff: { type: 'object', additionalProperties: false, required: Object.keys(handoffProps), properties: handoffProps },
  HandoffList: {
    type: 'object', additionalProperties: false, required: ['handoffs', 'next'],
    properties: {
      handoffs: { type: 'array', items: { $ref: '#/components/schemas/Handoff' } },
      next: { oneOf: [batchId, { type: 'null' }], description: 'pass as `after` for the next page; null on the last page' },
    },
  },
  Records: {
    type: 'object', additionalProperties: false, required: ['batchId', 'partner', 'version', 'schema', 'reference', 'count', 'records'],
    properties: {
      batchId, partner: str, version: { type: 'integer', minimum: 1 }, schema: strOrNull, reference: strOrNull, count,
      records: {
        type: 'array',
        items: {
          type: 'object', required: ['record'],
          properties: { record: { type: 'integer', minimum: 0, description: 'the index in the upload, as in the ack' } },
          description: 'the record as the partner sent it (its fields per `schema`), with its index first',
        },
      },
    },
  },
  OutcomeRecorded: {
    type: 'object', additionalProperties: false, required: [...Object.keys(handoffProps), 'recorded'],
    properties: { ...handoffProps, recorded: { enum: ['now', 'before'], description: '`before`: this same outcome was recorded by an earlier request' } },
  },
  Outcome: loadSchemaFile('handoff-outcome.v1.json'),
  SubjectEvents: {
    type: 'object', additionalProperties: false, required: ['events', 'next'],
    properties: {
      events: {
        type: 'array',
        items: {
          type: 'object', additionalProperties: false, required: ['seq', 'batchId', 'record', 'kind', 'handoffVersion', 'fields', 'values', 'at'],
          properties: {
            seq: { type: 'integer', minimum: 1, description: 'stable: the same event always has the same seq; increasing' }, batchId, record: { ...count, description: 'the record index (as in the ack and the handoff)' },
            kind: { enum: ['erased', 'corrected'] }, handoffVersion: { type: 'integer', minimum: 1, description: 'the handoff version the record was handed on in' },
            fields: { type: 'array', items: str, description: 'corrected field names (empty for an erasure)' },
            values: { oneOf: [{ type: 'null' }, { type: 'object', additionalProperties: str }], description: 'a correction\'s new values, to apply them' },
            at: time,
          },
        },
      },
      next: { type: 'integer', minimum: 0, description: 'pass as `after` for the following page' },
    },
  },
} as const;

const json = (ref: keyof typeof schemas) => jsonRef(ref);
const err = errorResponse;
const common = commonResponses(
  'missing, unknown or revoked service token, a partner token (`auth.unauthorized`), or the pinned client certificate is missing',
  'the token lacks the scope (`auth.scope`)',
);

export const INTERNAL_OPENAPI_DOCUMENT = {
  ...documentHead({
    title: 'Partner gateway internal API',
    purpose: 'For Babybalance\'s own systems: take the accepted records of partners\' batches and report what became of each.',
    token: '`pgws_<id>_<secret>` from `pgw service add <name> --scopes …` (scope `handoff` for the handoff routes, `outbound` for documents, `subjects` for subject events)',
    certificate: 'required in addition to the token for services added with --client-cert',
    schemas,
  }),
  paths: {
    '/internal/v1/handoffs': {
      get: {
        summary: 'Live-lane batches with accepted records, oldest first (the test lane never appears)',
        parameters: [
          { name: 'state', in: 'query', required: false, schema: { enum: ['ready', 'taken', 'confirmed', 'overdue'] }, description: 'default: all but withdrawn' },
          { name: 'limit', in: 'query', required: false, schema: { type: 'integer', minimum: 1, maximum: 1000 } },
          { name: 'after', in: 'query', required: false, schema: batchId, description: 'the `next` of the previous page' },
        ],
        responses: { 200: { description: 'a page of handoffs', content: json('HandoffList') }, 400: err('bad parameter (`http.bad_request`)'), ...common },
      },
    },
    '/internal/v1/subject-events': {
      get: {
        summary: 'Erasures and corrections of records already handed on (AVG art. 19), oldest first; append-only. Scope `subjects`.',
        description: 'Each event keeps its `seq` for ever (the cursor). Delivery is at least once: keep the `seq` you have applied and ask with `after=<seq>`; '
          + 'an event fetched again (a page read twice) carries the same `seq`, so apply each `seq` once. A rerun of the operator\'s action after a crash adds no '
          + 'second event for the same request, batch, record and kind (and, for a correction, the same values). Events also cover records already released '
          + '(the gateway holds no copy, only the index entry) until retention purges the batch; past `PGW_RETENTION_PAYLOAD_DAYS` the operator contacts the account service directly.',
        parameters: [
          { name: 'after', in: 'query', required: false, schema: { type: 'integer', minimum: 0 }, description: 'the `next` of the previous page (default 0)' },
          { name: 'limit', in: 'query', required: false, schema: { type: 'integer', minimum: 1, maximum: 1000 } },
        ],
        responses: { 200: { description: 'a page of events', content: json('SubjectEvents') }, 400: err('bad parameter (`http.bad_request`)'), ...common },
      },
    },
    '/internal/v1/handoffs/{batchId}': {
      get: {
        summary: 'One handoff',
        parameters: [batchIdParam],
        responses: { 200: { description: 'the handoff', content: json('Handoff') }, 404: err('no such handoff (`handoff.not_found`)'), ...common },
      },
    },
    '/internal/v1/handoffs/{batchId}/records': {
      get: {
        summary: 'The accepted records of the current version (streamed); once sent whole, the version is taken. Every fetch is audited.',
        parameters: [batchIdParam],
        responses: {
          200: { description: 'the records; X-Pgw-Handoff-Version names the version', content: json('Records') },
          404: err('no such handoff (`handoff.not_found`)'),
          409: err('the batch is being reprocessed (`handoff.withdrawn`)'),
          410: err('the records were deleted after their outcome (`handoff.released`)'),
          ...common,
        },
      },
    },
    '/internal/v1/handoffs/{batchId}/outcome': {
      post: {
        summary: 'The outcome of every accepted record, exactly once; the same body again is 200, another one 409 (the first stands)',
        parameters: [batchIdParam],
        requestBody: { required: true, content: json('Outcome') },
        responses: {
          200: { description: 'recorded (now or before); the result document for the partner follows', content: json('OutcomeRecorded') },
          400: err('`outcome.invalid`, `outcome.unknown_value`, `outcome.unknown_record`, `outcome.duplicate_record`, `outcome.missing_records`; nothing was recorded'),
          404: err('no such handoff (`handoff.not_found`)'),
          409: err('`handoff.conflict` (another outcome stands), `handoff.superseded`, `handoff.not_taken`, `handoff.withdrawn`'),
          410: err('the records were deleted (`handoff.released`)'),
          413: err('larger than PGW_INTERNAL_MAX_BODY_BYTES (`limits.upload_size`)'),
          415: err('not application/json (`http.unsupported_media_type`)'),
          ...common,
        },
      },
    },
    '/internal/v1/partners/{partnerId}/documents': {
      post: {
        summary: 'Send the partner a document: the body streams into an OpenPGP message signed by the gateway and encrypted to the partner\'s newest active key (the plaintext is never written to disk), published at /outbox/<name>.pgp, on the partner API and to its webhook. Scope `outbound`. The same name and bytes again return the same document.',
        parameters: [
          { name: 'partnerId', in: 'path', required: true, schema: str },
          { name: 'name', in: 'query', required: true, schema: { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9._-]{0,195}$' }, description: 'the file name the partner sees, without .pgp' },
        ],
        requestBody: { required: true, content: { '*/*': { schema: { type: 'string', contentMediaType: 'application/octet-stream' } } } },
        responses: {
          202: { description: 'published (or the same document as before)', content: json('DocumentSent') },
          400: err('`document.name_invalid`'),
          404: err('`document.partner_unknown`'),
          409: err('`document.partner_disabled`, `document.no_partner_key` (no active encryption key), `document.name_taken` (an open document of that name has other content)'),
          413: err('larger than PGW_MAX_OUTBOUND_BYTES (`limits.outbound_size`)'),
          415: err('a Content-Encoding (`http.unsupported_media_type`)'),
          ...common,
        },
      },
    },
    '/internal/v1/documents/{documentId}': {
      get: {
        summary: 'Where a document is: queued | published | downloaded | pushed | key_revoked | expired, with times. Scope `outbound`.',
        parameters: [{ name: 'documentId', in: 'path', required: true, schema: documentId }],
        responses: { 200: { description: 'the document', content: json('Document') }, 404: err('`document.not_found`'), ...common },
      },
    },
    '/internal/v1/openapi.json': {
      get: {
        summary: 'This document',
        security: [],
        responses: { 200: { description: 'OpenAPI 3.1', content: { 'application/json': { schema: { type: 'object' } } } }, 429: common[429] },
      },
    },
  },
} as const;
