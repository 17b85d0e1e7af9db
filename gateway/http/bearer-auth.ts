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
import { tokenAuth } from './token-auth.js';

export function bearerAuth(ledger: Ledger): RequestHandler {
  return tokenAuth(async (token) => {
    const row = await verifyToken(ledger, token);
    if (!row) return null;
    const partner = await ledger.partners.get(row.partner_id);
    if (!partner) return null;
    if (partner.status !== 'active') throw new PgwError('partner.disabled');
    return {
      tokenId: row.id,
      clientCertSha256: partner.client_cert_sha256,
      attach: (l) => { l.partner = partner; l.log = l.log.child({ partner: partner.id }); },
    };
  }, (id) => ledger.apiTokens.touch(id));
}
