/**
 * The one authentication path of the internal API: `Authorization: Bearer pgws_<id>_<secret>`,
 * a service token (admin/service-tokens.ts). A partner token, any other scheme, a cookie or
 * an identity header authenticates nothing here (401), as a service token authenticates
 * nothing on the partner listener. A token whose service registered a client certificate
 * must come with it (mutual TLS, pinned by SHA-256 fingerprint). Each route then names the
 * scope it needs ({@link requireScope}): a token without it gets 403 `auth.scope`.
 */
import type { RequestHandler } from 'express';
import type { Ledger } from '../core/ledger/index.js';
import { PgwError } from '../core/errors.js';
import { verifyServiceToken, type ServiceScope } from '../admin/service-tokens.js';
import { locals } from '../http/request-context.js';
import { tokenAuth } from '../http/token-auth.js';

export function serviceAuth(ledger: Ledger): RequestHandler {
  return tokenAuth(async (token) => {
    const service = await verifyServiceToken(ledger, token);
    if (!service) return null;
    return {
      tokenId: service.id,
      clientCertSha256: service.clientCertSha256,
      attach: (l) => { l.service = service; l.log = l.log.child({ service: service.name }); },
    };
  }, (id) => ledger.serviceTokens.touch(id));
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
