/**
 * The one authentication path of the partner API: `Authorization: Bearer pgw_<id>_<secret>`.
 * Any other scheme, a cookie, a client certificate alone, or identity headers
 * (`X-Partner-Id`, `X-Forwarded-For`, …) authenticate nothing. A partner that registered a
 * client certificate must present it as well (mutual TLS, pinned by SHA-256 fingerprint).
 */
import type { RequestHandler } from 'express';
import type { Ledger } from '../core/ledger/index.js';
import { PgwError } from '../core/errors.js';
import { verifyToken } from '../admin/api-tokens.js';
import { locals } from './request-context.js';
import { bearerToken, requirePinnedCertificate, lastUseToucher } from './token-auth.js';

export function bearerAuth(ledger: Ledger): RequestHandler {
  const touch = lastUseToucher((id) => ledger.apiTokens.touch(id));
  return (req, res, next) => {
    void (async () => {
      const token = bearerToken(req);
      const row = token ? await verifyToken(ledger, token) : null;
      if (!row) throw new PgwError('auth.unauthorized');
      const partner = await ledger.partners.get(row.partner_id);
      if (!partner) throw new PgwError('auth.unauthorized');
      if (partner.status !== 'active') throw new PgwError('partner.disabled');
      if (partner.client_cert_sha256) requirePinnedCertificate(req, partner.client_cert_sha256);
      const l = locals(res);
      l.partner = partner;
      l.tokenId = row.id;
      l.log = l.log.child({ partner: partner.id });
      touch(row.id);
    })().then(() => next(), next);
  };
}
