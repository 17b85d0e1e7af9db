/**
 * The frame both HTTP APIs (partner and internal) are built in: request context → request
 * counter → security headers → per-address rate limit → (the OpenAPI document, the only
 * unauthenticated route) → authentication for EVERYTHING else, unknown paths included (deny
 * by default) → per-token rate limit → the API's routes → 404 → the API's one error handler.
 */
import express, { type ErrorRequestHandler, type RequestHandler } from 'express';
import helmet from 'helmet';
import type { Config } from '../core/config.js';
import type { Logger } from '../core/logger.js';
import { PgwError } from '../core/errors.js';
import type { ProtocolCounters } from '../core/protocol-counters.js';
import { requestContext } from './request-context.js';
import { rateLimits, type RateStoreMaker } from './rate-limits.js';

export interface ApiAppOptions {
  log: Logger;
  http: Config['http'];
  counters?: Pick<ProtocolCounters, 'httpRequest'>;
  /** Shared rate-limit counters (several gateway processes); default per process. */
  rateStore?: RateStoreMaker;
  /** Put before the route pattern in the request counter's label ('' for the partner API). */
  counterPrefix: string;
  openapi: { path: string; document: unknown };
  auth: RequestHandler;
  /** Mounted in order after authentication. */
  routes: RequestHandler[];
  errorHandler: ErrorRequestHandler;
}

export function createApiApp(o: ApiAppOptions): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  // Client addresses are the socket's: a forwarded-for header is just another header.
  app.set('trust proxy', false);
  app.set('case sensitive routing', true);
  app.set('strict routing', true);
  const limits = rateLimits(o.http, o.rateStore);

  app.use(requestContext(o.log));
  app.use((req, res, next) => {
    // The route pattern, never the raw path, so that label values stay few and hold no input.
    res.on('finish', () => o.counters?.httpRequest(`${o.counterPrefix}${req.route?.path ?? 'unmatched'}`, res.statusCode));
    next();
  });
  app.use(helmet());
  app.use(limits.perAddress);
  app.get(o.openapi.path, (_req, res) => {
    res.json(o.openapi.document);
  });
  app.use(limits.guardAuth(o.auth), limits.perToken);
  for (const r of o.routes) app.use(r);
  app.use(() => {
    throw new PgwError('http.not_found');
  });
  app.use(o.errorHandler);
  return app;
}
