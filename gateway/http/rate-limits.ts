/**
 * Rate limits of the partner API (per process; see the README for several gateways):
 * - per client address, before anything else — a flood from one address cannot starve others;
 * - failed authentications per address (only 401 answers count), against token guessing;
 * - per API token, after authentication.
 * Every limit answers 429 `http.rate_limited` with `Retry-After`.
 */
import type { RequestHandler } from 'express';
import { rateLimit } from 'express-rate-limit';
import type { Config } from '../core/config.js';
import { PgwError } from '../core/errors.js';
import { sendError } from './error-map.js';
import { locals } from './request-context.js';

const limited: RequestHandler = (_req, res) => sendError(res, new PgwError('http.rate_limited'));

export interface RateLimits {
  perAddress: RequestHandler;
  authFailures: RequestHandler;
  perToken: RequestHandler;
}

export function rateLimits(http: Config['http']): RateLimits {
  const common = { standardHeaders: 'draft-8', legacyHeaders: false, handler: limited } as const;
  return {
    perAddress: rateLimit({ ...common, windowMs: 60_000, limit: http.ipRequestsPerMinute }),
    authFailures: rateLimit({
      ...common,
      windowMs: 10 * 60_000,
      limit: http.authFailuresPerIp,
      requestWasSuccessful: (_req, res) => res.statusCode !== 401,
      skipSuccessfulRequests: true,
    }),
    perToken: rateLimit({
      ...common,
      windowMs: 60_000,
      limit: http.tokenRequestsPerMinute,
      keyGenerator: (_req, res) => `token:${locals(res).tokenId ?? 'none'}`,
    }),
  };
}
