/**
 * The internal API as an Express app, for Babybalance's own systems (never partners):
 * request context → security headers → per-address rate limit → (the OpenAPI document, the
 * only unauthenticated route) → service-token authentication for EVERYTHING else, unknown
 * paths included (deny by default) → per-token rate limit → routes (each names its scope)
 * → 404 → this API's one error handler.
 */
import express from 'express';
import helmet from 'helmet';
import type { Config } from '../core/config.js';
import { PgwError } from '../core/errors.js';
import type { ProtocolCounters } from '../core/protocol-counters.js';
import { requestContext } from '../http/request-context.js';
import { rateLimits, type RateStoreMaker } from '../http/rate-limits.js';
import { serviceAuth } from './service-auth.js';
import { internalErrorHandler } from './error-map.js';
import { INTERNAL_OPENAPI_DOCUMENT } from './openapi.js';
import { handoffRoutes } from './routes/handoffs.js';
import type { HandoffDeps } from '../admin/handoffs.js';
import type { GatewayKeyring } from '../../keys/gateway-keyring.js';
import { documentRoutes } from './routes/documents.js';
import { subjectEventRoutes } from './routes/subject-events.js';

export interface InternalAppDeps extends Omit<HandoffDeps, 'overdueHours'> {
  config: Config;
  counters?: Pick<ProtocolCounters, 'httpRequest'>;
  /** Shared rate-limit counters (several gateway processes); default per process. */
  rateStore?: RateStoreMaker;
  /** Signs outbound documents; without it the document routes are absent (404). */
  keyring?: GatewayKeyring;
  /** Queue the webhook push of an outbound document. */
  enqueueDocumentDelivery?: (documentId: string) => Promise<void>;
}

export function createInternalApp(d: InternalAppDeps): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.set('trust proxy', false);
  app.set('case sensitive routing', true);
  app.set('strict routing', true);
  const limits = rateLimits(d.config.http, d.rateStore);

  app.use(requestContext(d.log));
  app.use((req, res, next) => {
    res.on('finish', () => d.counters?.httpRequest(`internal ${req.route?.path ?? 'unmatched'}`, res.statusCode));
    next();
  });
  app.use(helmet());
  app.use(limits.perAddress);
  app.get('/internal/v1/openapi.json', (_req, res) => {
    res.json(INTERNAL_OPENAPI_DOCUMENT);
  });
  app.use(limits.guardAuth(serviceAuth(d.ledger)), limits.perToken);
  app.use(handoffRoutes({ ...d, overdueHours: d.config.handoff.overdueHours, maxBodyBytes: d.config.internal.maxBodyBytes }));
  app.use(subjectEventRoutes(d));
  if (d.keyring) {
    app.use(documentRoutes({
      ledger: d.ledger, dataDir: d.dataDir, log: d.log, ...(d.fault ? { fault: d.fault } : {}), keyring: d.keyring, limits: d.config.limits,
      identityKey: d.dataKeys.derivedKey('outbound-document-identity'),
      ...(d.enqueueDocumentDelivery ? { enqueueDelivery: d.enqueueDocumentDelivery } : {}),
    }));
  }
  app.use(() => {
    throw new PgwError('http.not_found');
  });
  app.use(internalErrorHandler);
  return app;
}
