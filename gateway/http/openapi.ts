/**
 * The OpenAPI 3.1 document of the partner API, served at `/v1/openapi.json`. Its schemas are
 * JSON Schema 2020-12; the HTTPS integration tests validate every response they receive
 * against it, so the document and the code cannot drift apart.
 */
import { str, strOrNull, time, timeOrNull, batchId, batchIdParam, errorSchema, jsonRef, errorResponse, commonResponses, documentHead } from './openapi-parts.js';
const sha256 = { type: 'string', pattern: '^[0-9a-f]{64}$' } as const;
const links = {
  type: 'object', additionalProperties: false, required: ['self', 'ack', 'result'],
  properties: { self: str, ack: str, result: str },
} as const;
/** An ack or result document: its version, hash and who picked it up when. */
const documentInfo = {
  oneOf: [{ type: 'null' }, {
    type: 'object', additionalProperties: false,
    required: ['version', 'sha256', 'createdAt', 'firstDownloadedAt', 'downloadCount', 'pushedAt'],
    properties: {
      version: { type: 'integer', minimum: 1 }, sha256, createdAt: time, firstDownloadedAt: timeOrNull,
      downloadCount: { type: 'integer', minimum: 0 }, pushedAt: timeOrNull,
    },
  }],
} as const;
const status = { enum: ['received', 'processing', 'accepted', 'partially_accepted', 'rejected'] } as const;

const batchProps = {
  batchId, fileName: str, sha256, size: { type: 'integer', minimum: 0 }, receivedAt: time, test: { type: 'boolean' },
  status, duplicateOf: { oneOf: [batchId, { type: 'null' }] }, links,
} as const;
const uploadProps = { ...batchProps, retried: { type: 'boolean' } } as const;

const schemas = {
  Error: errorSchema({}),
  Upload: {
    type: 'object', additionalProperties: false, required: Object.keys(uploadProps), properties: uploadProps,
    description: '202 for a new upload; 200 (`retried`: true) when the same name and bytes were uploaded before',
  },
  Batch: {
    type: 'object', additionalProperties: false,
    required: [...Object.keys(batchProps), 'channel', 'error', 'records', 'processedAt', 'ack', 'result', 'events'],
    properties: {
      ...batchProps,
      channel: { enum: ['sftp', 'https'] },
      error: {
        oneOf: [{ type: 'null' }, { type: 'object', additionalProperties: false, required: ['code', 'message'], properties: { code: str, message: str } }],
      },
      records: {
        oneOf: [{ type: 'null' }, {
          type: 'object', additionalProperties: false, required: ['total', 'accepted', 'rejected'],
          properties: { total: { type: 'integer' }, accepted: { type: 'integer' }, rejected: { type: 'integer' } },
        }],
      },
      processedAt: timeOrNull,
      ack: documentInfo,
      result: { ...documentInfo, description: 'the result document: what the account service did with the accepted records (live lane)' },
      events: {
        type: 'array',
        items: {
          type: 'object', additionalProperties: false, required: ['at', 'stage', 'outcome', 'code'],
          properties: { at: time, stage: str, outcome: { enum: ['ok', 'error', 'info'] }, code: strOrNull },
        },
      },
    },
  },
  DocumentList: {
    type: 'object', additionalProperties: false, required: ['documents'],
    properties: {
      documents: {
        type: 'array',
        items: {
          type: 'object', additionalProperties: false,
          required: ['documentId', 'fileName', 'sha256', 'createdAt', 'downloadedAt', 'pushedAt', 'state', 'links'],
          properties: {
            documentId: { type: 'string', pattern: '^d-[0-9]{8}-[a-z0-9]{12}$' }, fileName: { type: 'string' },
            sha256: { type: 'string', pattern: '^[0-9a-f]{64}$' }, createdAt: { type: 'string', format: 'date-time' },
            downloadedAt: { type: ['string', 'null'], format: 'date-time' }, pushedAt: { type: ['string', 'null'], format: 'date-time' },
            state: { enum: ['published', 'downloaded', 'pushed'] },
            links: { type: 'object', additionalProperties: false, required: ['download'], properties: { download: { type: 'string' } } },
          },
        },
      },
    },
  },
  AckList: {
    type: 'object', additionalProperties: false, required: ['acks'],
    properties: {
      acks: {
        type: 'array',
        items: {
          type: 'object', additionalProperties: false,
          required: ['batchId', 'fileName', 'test', 'channel', 'status', 'version', 'sha256', 'createdAt', 'firstDownloadedAt', 'downloadCount', 'pushedAt', 'links'],
          properties: {
            batchId, fileName: str, test: { type: 'boolean' }, channel: { enum: ['sftp', 'https'] },
            status: { enum: ['accepted', 'partially_accepted', 'rejected', null] }, version: { type: 'integer', minimum: 1 }, sha256,
            createdAt: time, firstDownloadedAt: timeOrNull, downloadCount: { type: 'integer', minimum: 0 }, pushedAt: timeOrNull, links,
          },
        },
      },
    },
  },
  KeySubmission: {
    type: 'object', additionalProperties: false, required: ['fingerprint', 'algorithm', 'signedBy', 'activatesAt', 'expiresAt'],
    properties: { fingerprint: str, algorithm: str, signedBy: str, activatesAt: time, expiresAt: timeOrNull },
  },
} as const;

const json = (ref: keyof typeof schemas) => jsonRef(ref);
const err = errorResponse;
const common = commonResponses(
  'missing, unknown or revoked token (`auth.unauthorized`), or the registered client certificate is missing',
  'the partner is disabled (`partner.disabled`)',
);

export const OPENAPI_DOCUMENT = {
  ...documentHead({
    title: 'Partner gateway API',
    purpose: 'Upload OpenPGP-encrypted, signed batches and fetch their signed, encrypted acknowledgements.',
    token: '`pgw_<id>_<secret>` from `pgw partner token <id>`',
    certificate: 'required in addition to the token for partners that registered a certificate',
    schemas,
  }),
  paths: {
    '/v1/batches/{fileName}': {
      put: {
        summary: 'Upload a batch (the OpenPGP file as the body)',
        parameters: [
          { name: 'fileName', in: 'path', required: true, schema: { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9._-]{0,199}\\.(pgp|gpg|asc)$' } },
          { name: 'test', in: 'query', required: false, schema: { enum: ['true', 'false'] }, description: 'the test lane: processed and acked, never handed on' },
        ],
        requestBody: {
          required: true,
          content: { 'application/octet-stream': { schema: { type: 'string', contentMediaType: 'application/octet-stream' } }, 'application/pgp-encrypted': { schema: { type: 'string' } } },
        },
        responses: {
          202: { description: 'stored durably and queued', content: json('Upload') },
          200: { description: 'the same name and bytes were received before: that batch', content: json('Upload') },
          400: err('unsafe file name (`upload.name_invalid`) or bad parameter'),
          413: err('larger than the upload limit (`limits.upload_size`)'),
          415: err('wrong Content-Type or any Content-Encoding (`http.unsupported_media_type`)'),
          503: err('could not be stored durably (`upload.storage_failed`); retry'),
          ...common,
        },
      },
    },
    '/v1/batches/{batchId}': {
      get: {
        summary: 'Status and stage timeline of a batch (no personal data)',
        parameters: [batchIdParam],
        responses: { 200: { description: 'the batch', content: json('Batch') }, 404: err('no such batch of this partner (`batch.not_found`)'), ...common },
      },
    },
    '/v1/batches/{batchId}/ack': {
      get: {
        summary: 'The signed, encrypted acknowledgement (newest version); a download is a delivery receipt',
        parameters: [batchIdParam],
        responses: {
          200: {
            description: 'the ack file; X-Pgw-Ack-Version and X-Pgw-Ack-Sha256 name it',
            content: { 'application/pgp-encrypted': { schema: { type: 'string', contentMediaType: 'application/pgp-encrypted' } } },
          },
          404: err('no such batch (`batch.not_found`) or ack not ready yet (`ack.not_ready`)'),
          ...common,
        },
      },
    },
    '/v1/batches/{batchId}/result': {
      get: {
        summary: 'The signed, encrypted result document (pgw.result: the outcome of each accepted record); a download is a delivery receipt',
        parameters: [batchIdParam],
        responses: {
          200: {
            description: 'the result file; X-Pgw-Result-Version and X-Pgw-Result-Sha256 name it',
            content: { 'application/pgp-encrypted': { schema: { type: 'string', contentMediaType: 'application/pgp-encrypted' } } },
          },
          404: err('no such batch (`batch.not_found`) or no result yet (`result.not_ready`)'),
          ...common,
        },
      },
    },
    '/v1/documents': {
      get: {
        summary: 'Documents Babybalance sent this partner (declarations, reports), newest first; withdrawn and expired ones are not listed',
        parameters: [{ name: 'pending', in: 'query', required: false, schema: { enum: ['true', 'false'] }, description: 'only documents neither downloaded nor pushed' }],
        responses: { 200: { description: 'documents', content: json('DocumentList') }, 400: err('bad parameter (`http.bad_request`)'), ...common },
      },
    },
    '/v1/documents/{documentId}': {
      get: {
        summary: 'One document, signed by the gateway and encrypted to the partner\'s key (also at /outbox/<name>.pgp over SFTP); a complete download is the delivery receipt',
        parameters: [{ name: 'documentId', in: 'path', required: true, schema: { type: 'string', pattern: '^d-[0-9]{8}-[a-z0-9]{12}$' } }],
        responses: {
          200: {
            description: 'the document; X-Pgw-Document-Id and X-Pgw-Document-Sha256 name it',
            content: { 'application/pgp-encrypted': { schema: { type: 'string', contentMediaType: 'application/pgp-encrypted' } } },
          },
          404: err('no such document of this partner, or withdrawn or expired (`document.not_found`)'),
          ...common,
        },
      },
    },
    '/v1/acks': {
      get: {
        summary: 'The newest ack of each batch, newest first',
        parameters: [
          { name: 'pending', in: 'query', required: false, schema: { enum: ['true', 'false'] }, description: 'only acks neither downloaded nor pushed' },
          { name: 'limit', in: 'query', required: false, schema: { type: 'integer', minimum: 1, maximum: 1000 } },
        ],
        responses: { 200: { description: 'acks', content: json('AckList') }, 400: err('bad parameter (`http.bad_request`)'), ...common },
      },
    },
    '/v1/keys/gateway': {
      get: {
        summary: 'Armored gateway public keys to encrypt to (the active key and any next one)',
        responses: { 200: { description: 'armored keys', content: { 'application/pgp-keys': { schema: { type: 'string' } } } }, ...common },
      },
    },
    '/v1/keys': {
      put: {
        summary: 'Submit your next OpenPGP public key (self-service rotation); it counts after the configured delay',
        description: 'Body: the public key file exactly as signed. Header X-Pgw-Key-Signature: base64 of a detached signature over the body '
          + '(gpg --detach-sign, binary or armored) made by one of your keys that is active now.',
        parameters: [{ name: 'X-Pgw-Key-Signature', in: 'header', required: true, schema: { type: 'string' } }],
        requestBody: { required: true, content: { 'application/pgp-keys': { schema: { type: 'string' } } } },
        responses: {
          202: { description: 'registered as pending', content: json('KeySubmission') },
          400: err('unsigned (`key.submission_unsigned`), not signed by an active key of yours (`key.submission_bad_signature`), weak or unreadable key'),
          409: err('this key is already registered (`key.submission_duplicate`)'),
          413: err('key or signature too large (`key.submission_too_large`)'),
          415: err('wrong Content-Type (`http.unsupported_media_type`)'),
          ...common,
        },
      },
    },
    '/v1/openapi.json': {
      get: {
        summary: 'This document',
        security: [],
        responses: { 200: { description: 'OpenAPI 3.1', content: { 'application/json': { schema: { type: 'object' } } } }, 429: common[429] },
      },
    },
  },
} as const;
