/**
 * The partner API as an Express app, in the frame of api-app.ts: bearer authentication for
 * everything but the OpenAPI document, then the batch, document and info routes. There are no admin routes on this app: the operator's
 * tools are the CLI and the console, on their own listener.
 */
import type express from 'express';
import type { Config } from '../core/config.js';
import type { Ledger } from '../core/ledger/index.js';
import type { DataDir } from '../core/data-dir.js';
import type { Logger } from '../core/logger.js';
import type { IngestService } from '../ingest/ingest-service.js';
import type { RateStoreMaker } from './rate-limits.js';
import { createApiApp } from './api-app.js';
import { bearerAuth } from './bearer-auth.js';
import { errorHandler } from './error-map.js';
import { batchRoutes } from './routes/batches.js';
import { documentRoutes } from './routes/documents.js';
import { infoRoutes, type InfoRouteDeps } from './routes/acks-and-keys.js';
import { OPENAPI_DOCUMENT } from './openapi.js';
import type { ProtocolCounters } from '../core/protocol-counters.js';

export interface PartnerAppDeps {
  config: { http: Config['http']; limits: Pick<Config['limits'], 'uploadBytes'> };
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
  return createApiApp({
    log: d.log, http: d.config.http, counterPrefix: '', openapi: { path: '/v1/openapi.json', document: OPENAPI_DOCUMENT },
    ...(d.counters ? { counters: d.counters } : {}), ...(d.rateStore ? { rateStore: d.rateStore } : {}),
    auth: bearerAuth(d.ledger),
    routes: [
      batchRoutes({ ledger: d.ledger, ingest: d.ingest, dataDir: d.dataDir, uploadBytes: d.config.limits.uploadBytes }),
      documentRoutes({ ledger: d.ledger, dataDir: d.dataDir, log: d.log }),
      infoRoutes({ ledger: d.ledger, gatewayPublicKeys: d.gatewayPublicKeys, submitPartnerKey: d.submitPartnerKey }),
    ],
    errorHandler,
  });
}
