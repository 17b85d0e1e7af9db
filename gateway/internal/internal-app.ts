/**
 * The internal API as an Express app, for Babybalance's own systems (never partners), in the
 * frame of http/api-app.ts: service-token authentication for everything but the OpenAPI
 * document, then the handoff, subject-event and document routes (each names its scope),
 * and this API's own error handler.
 */
import type express from 'express';
import type { Config } from '../core/config.js';
import type { ProtocolCounters } from '../core/protocol-counters.js';
import type { RateStoreMaker } from '../http/rate-limits.js';
import { createApiApp } from '../http/api-app.js';
import { serviceAuth } from './service-auth.js';
import { internalErrorHandler } from './error-map.js';
import { INTERNAL_OPENAPI_DOCUMENT } from './openapi.js';
import { handoffRoutes } from './routes/handoffs.js';
import type { HandoffDeps } from '../admin/handoffs.js';
import type { GatewayKeyring } from '../../keys/gateway-keyring.js';
import { documentRoutes } from './routes/documents.js';
import { subjectEventRoutes } from './routes/subject-events.js';

export interface InternalAppDeps extends Omit<HandoffDeps, 'overdueHours'> {
  config: Pick<Config, 'http' | 'limits' | 'internal'> & { handoff: Pick<Config['handoff'], 'overdueHours'> };
  counters?: Pick<ProtocolCounters, 'httpRequest'>;
  /** Shared rate-limit counters (several gateway processes); default per process. */
  rateStore?: RateStoreMaker;
  /** Signs outbound documents; without it the document routes are absent (404). */
  keyring?: GatewayKeyring;
  /** Queue the webhook push of an outbound document. */
  enqueueDocumentDelivery?: (documentId: string) => Promise<void>;
}

export function createInternalApp(d: InternalAppDeps): express.Express {
  const routes = [
    handoffRoutes({ ...d, overdueHours: d.config.handoff.overdueHours, maxBodyBytes: d.config.internal.maxBodyBytes }),
    subjectEventRoutes(d),
  ];
  if (d.keyring) {
    routes.push(documentRoutes({
      ledger: d.ledger, dataDir: d.dataDir, log: d.log, ...(d.fault ? { fault: d.fault } : {}), keyring: d.keyring, limits: d.config.limits,
      identityKey: d.dataKeys.derivedKey('outbound-document-identity'),
      ...(d.enqueueDocumentDelivery ? { enqueueDelivery: d.enqueueDocumentDelivery } : {}),
    }));
  }
  return createApiApp({
    log: d.log, http: d.config.http, counterPrefix: 'internal ', openapi: { path: '/internal/v1/openapi.json', document: INTERNAL_OPENAPI_DOCUMENT },
    ...(d.counters ? { counters: d.counters } : {}), ...(d.rateStore ? { rateStore: d.rateStore } : {}),
    auth: serviceAuth(d.ledger),
    routes,
    errorHandler: internalErrorHandler,
  });
}
