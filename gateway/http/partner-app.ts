/**
 * The partner API as an Express app: request context → security headers → per-address rate
 * limit → (the OpenAPI document, the only unauthenticated route) → bearer authentication for
 * EVERYTHING else, unknown paths included (deny by default) → per-token rate limit → routes
 * → 404 → the one error handler. There are no admin routes on this app: the operator's
 * tools are the CLI and the console, on their own listener.
 */
import express from 'express';
import helmet from 'helmet';
import type { Config } from '../core/config.js';
import type { Ledger } from '../core/ledger/index.js';
import type { DataDir } from '../core/data-dir.js';
import type { Logger } from '../core/logger.js';
import { PgwError } from '../core/errors.js';
import type { IngestService } from '../ingest/ingest-service.js';
import { requestContext } from './request-context.js';
import { rateLimits, type RateStoreMaker } from './rate-limits.js';
import { bearerAuth } from './bearer-auth.js';
import { errorHandler } from './error-map.js';
import { batchRoutes } from './routes/batches.js';
import { documentRoutes } from './routes/documents.js';
import { infoRoutes, type InfoRouteDeps } from './routes/acks-and-keys.js';
import { OPENAPI_DOCUMENT } from './openapi.js';
import type { ProtocolCounters } from '../core/protocol-counters.js';

export interface PartnerAppDeps {
  config: Config;
  ledger: Ledger;
  ingest: IngestService;
  dataDir: DataDir;
  gatewayPublicKeys: () => Promise<string>;
  submitPartnerKey: InfoRouteDeps['submitPartnerKey'];
  log: Logger;
  counters?: Pick<ProtocolCounters, 'httpRequest'>;
  /** Shared rate-limit counters (several gateway processes); default per process. */
  rateStore?: RateStoreMaker;
}

export function createPartnerApp(d: PartnerAppDeps): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  // Client addresses are the socket's: a forwarded-for header is just another header.
  app.set('trust proxy', false);
  app.set('case sensitive routing', true);
  app.set('strict routing', true);
  const limits = rateLimits(d.config.http, d.rateStore);

  app.use(requestContext(d.log));
  app.use((req, res, next) => {
    // The route pattern, never the raw path, so that label values stay few and hold no input.
    res.on('finish', () => d.counters?.httpRequest(req.route?.path ?? 'unmatched', res.statusCode));
    next();
  });
  app.use(helmet());
  app.use(limits.perAddress);
  app.get('/v1/openapi.json', (_req, res) => {
    res.json(OPENAPI_DOCUMENT);
  });
  app.use(limits.guardAuth(bearerAuth(d.ledger)), limits.perToken);
  app.use(batchRoutes({ ledger: d.ledger, ingest: d.ingest, dataDir: d.dataDir, uploadBytes: d.config.limits.uploadBytes }));
  app.use(documentRoutes({ ledger: d.ledger, dataDir: d.dataDir, log: d.log }));
  app.use(infoRoutes({ ledger: d.ledger, gatewayPublicKeys: d.gatewayPublicKeys, submitPartnerKey: d.submitPartnerKey }));
  app.use(() => {
    throw new PgwError('http.not_found');
  });
  app.use(errorHandler);
  return app;
}
