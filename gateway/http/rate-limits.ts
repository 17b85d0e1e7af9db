/**
 * Rate limits of the partner API, counted across every gateway process when a store maker
 * is given (`pgw start`: Redis, see shared-rate-store.ts), else per process:
 * - per client address, before anything else — a flood from one address cannot starve others;
 * - failed authentications per address (only 401 answers count), against token guessing;
 * - per API token, after authentication.
 * Every limit answers 429 `http.rate_limited` with `Retry-After`.
 */
import type { RequestHandler } from 'express';
import { rateLimit, ipKeyGenerator, MemoryStore, type Options, type Store } from 'express-rate-limit';
import type { Config } from '../core/config.js';
import { PgwError } from '../core/errors.js';
import { sendError, httpStatusFor } from './error-map.js';
import { locals } from './request-context.js';

const limited: RequestHandler = (_req, res) => sendError(res, new PgwError('http.rate_limited'));

export interface RateLimits {
  perAddress: RequestHandler;
  /** Wraps the authentication middleware: refuses an address over its failed-login budget, counts its 401s. */
  guardAuth(auth: RequestHandler): RequestHandler;
  perToken: RequestHandler;
}

/** Makes the store of one limit (`name`); none = express-rate-limit's in-process memory. */
export type RateStoreMaker = (name: 'address' | 'auth-failures' | 'token') => Store;

const AUTH_FAILURE_WINDOW_MS = 10 * 60_000;

export function rateLimits(http: Config['http'], store?: RateStoreMaker): RateLimits {
  const common = { standardHeaders: 'draft-8', legacyHeaders: false, handler: limited } as const;
  const failures = store ? store('auth-failures') : new MemoryStore();
  failures.init?.({ windowMs: AUTH_FAILURE_WINDOW_MS } as Options);
  return {
    perAddress: rateLimit({ ...common, windowMs: 60_000, limit: http.ipRequestsPerMinute, ...(store ? { store: store('address') } : {}) }),
    guardAuth: (auth) => guardAuth(auth, failures, http.authFailuresPerIp),
    perToken: rateLimit({
      ...common,
      windowMs: 60_000,
      limit: http.tokenRequestsPerMinute,
      keyGenerator: (_req, res) => `token:${locals(res).tokenId ?? 'none'}`,
      ...(store ? { store: store('token') } : {}),
    }),
  };
}

/**
 * Failed authentications per address: checked before `auth` runs, counted when it answers
 * 401 — before that answer is sent, so a client that retries at once is already counted.
 * (express-rate-limit's skipSuccessfulRequests counts every request up front and takes the
 * successes back afterwards: a burst of good requests from one address, larger than the
 * failure budget, was refused — more so with the count shared by several gateways.)
 */
function guardAuth(auth: RequestHandler, failures: Store, limit: number): RequestHandler {
  return (req, res, next) => {
    const key = ipKeyGenerator(req.ip ?? '');
    void (async () => {
      const seen = await failures.get?.(key);
      if (seen && seen.totalHits >= limit) {
        const left = (seen.resetTime?.getTime() ?? Date.now() + AUTH_FAILURE_WINDOW_MS) - Date.now();
        res.setHeader('Retry-After', String(Math.max(1, Math.ceil(left / 1000))));
        limited(req, res, next);
        return;
      }
      auth(req, res, (err?: unknown) => {
        if (err instanceof PgwError && httpStatusFor(err.code) === 401) {
          void Promise.resolve(failures.increment(key)).catch(() => {}).then(() => next(err));
        } else {
          next(err);
        }
      });
    })().catch(next);
  };
}
