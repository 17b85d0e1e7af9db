/**
 * What the partner API's and the internal API's OpenAPI documents share: the primitive
 * schemas, the one error shape, the response and parameter builders and the document head.
 * Each API still declares its own schemas and paths.
 */
export const str = { type: 'string' } as const;
export const strOrNull = { type: ['string', 'null'] } as const;
export const time = { type: 'string', format: 'date-time' } as const;
export const timeOrNull = { type: ['string', 'null'], format: 'date-time' } as const;
export const batchId = { type: 'string', pattern: '^b-[0-9]{8}-[a-z0-9]{12}$' } as const;
export const batchIdParam = { name: 'batchId', in: 'path', required: true, schema: batchId } as const;

/** The error body of both APIs; `extra` adds properties of one API's errors. */
export function errorSchema<E extends Record<string, unknown>>(extra: E) {
  return {
    type: 'object', additionalProperties: false, required: ['error'],
    properties: {
      error: {
        type: 'object', additionalProperties: false, required: ['code', 'message', 'requestId'],
        properties: {
          code: { type: 'string', pattern: '^[a-z][a-z0-9_]*(\\.[a-z0-9_]+)+$', description: 'stable error code (see the README)' },
          message: str,
          requestId: { type: 'string', pattern: '^[0-9a-f]{16}$' },
          ...extra,
        },
      },
    },
  } as const;
}

/** A JSON body that refers to one of the document's component schemas. */
export const jsonRef = <K extends string>(ref: K) => ({ 'application/json': { schema: { $ref: `#/components/schemas/${ref}` } } });
/** An error response with the shared error body. */
export const errorResponse = (description: string) => ({ description, content: jsonRef('Error') });

/** The responses every route of an API shares; only who is refused with 401 and 403 differs. */
export const commonResponses = (unauthorized: string, forbidden: string) => ({
  401: errorResponse(unauthorized),
  403: errorResponse(forbidden),
  429: errorResponse('rate limited (`http.rate_limited`); see Retry-After'),
  default: errorResponse('any other error, with a stable code'),
});

/**
 * Everything of a document but its paths: the frame, the title, and the two credentials every
 * route asks for (a bearer token, plus a client certificate where one was registered).
 */
export function documentHead<S>(head: { title: string; purpose: string; token: string; certificate: string; schemas: S }) {
  return {
    openapi: '3.1.0',
    jsonSchemaDialect: 'https://json-schema.org/draft/2020-12/schema',
    security: [{ bearer: [] }],
    info: {
      title: head.title,
      version: '1.0.0',
      description: `${head.purpose} Every response carries X-Request-Id; errors have one shape with a stable code.`,
    },
    components: {
      securitySchemes: {
        bearer: { type: 'http', scheme: 'bearer', description: head.token },
        clientCertificate: { type: 'mutualTLS', description: head.certificate },
      },
      schemas: head.schemas,
    },
  };
}
