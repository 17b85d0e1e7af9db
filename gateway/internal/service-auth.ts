/**
 * The one authentication path of the internal API: `Authorization: Bearer pgws_<id>_<secret>`,
 * a service token (admin/service-tokens.ts). A partner token, any other scheme, a cookie or
 * an identity header authenticates nothing here (401), as a service token authenticates
 * nothing on the partner listener. A token whose service registered a client certificate
 * must come with it (mutual TLS, pinned by SHA-256 fingerprint). Each route then names the
 * scope it needs ({@link requireScope}): a token without it gets 403 `auth.scope`.
 */
import type { RequestHandler } from 'express';
import type { TLSSocket } from 'node:tls';
import type { Ledger } from '../core/ledger/index.js';
import { PgwError } from '../core/errors.js';
import { verifyServiceToken, type ServiceScope } from '../admin/service-tokens.js';
import { locals } from '../http/request-context.js';

const BEARER = /^Bearer ([A-Za-z0-9_-]{1,200})$/;

export function serviceAuth(ledger: Ledger): RequestHandler {
  // Last-use bookkeeping at most once a minute per token and process: no ledger write per request.
  const touched = new Map<string, number>();
  return (req, res, next) => {
    void (async () => {
      const m = BEARER.exec(req.headers.authorization ?? '');
      const service = m ? await verifyServiceToken(ledger, m[1]!) : null;
      if (!service) throw new PgwError('auth.unauthorized');
      if (service.clientCertSha256) {
        const cert = (req.socket as TLSSocket).getPeerCertificate?.();
        const presented = cert && 'fingerprint256' in cert ? cert.fingerprint256 : null;
        if (!presented || presented.toUpperCase() !== service.clientCertSha256.toUpperCase()) throw new PgwError('auth.client_certificate');
      }
      const l = locals(res);
      l.service = service;
      l.tokenId = service.id;
      l.log = l.log.child({ service: service.name });
      const now = Date.now();
      if (now - (touched.get(service.id) ?? 0) > 60_000) {
        touched.set(service.id, now);
        ledger.serviceTokens.touch(service.id).catch(() => {}); // bookkeeping only; never fails a request
      }
    })().then(() => next(), next);
  };
}

/** The route needs `scope`: 403 `auth.scope` for a token without it. */
export function requireScope(scope: ServiceScope): RequestHandler {
  return (_req, res, next) => {
    next(locals(res).service?.scopes.has(scope) ? undefined : new PgwError('auth.scope', undefined, { scope }));
  };
}

/** The calling service as named in the ledger and the audit log: `service:<name>/<token id>`. */
export function serviceActor(res: Parameters<RequestHandler>[1]): string {
  const s = locals(res).service!;
  return `service:${s.name}/${s.id}`;
}
