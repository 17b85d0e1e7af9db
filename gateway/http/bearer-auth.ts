/**
 * The one authentication path of the partner API: `Authorization: Bearer pgw_<id>_<secret>`.
 * Any other scheme, a cookie, a client certificate alone, or identity headers
 * (`X-Partner-Id`, `X-Forwarded-For`, …) authenticate nothing. A partner that registered a
 * client certificate must present it as well (mutual TLS, pinned by SHA-256 fingerprint).
 */
import type { RequestHandler } from 'express';
import type { TLSSocket } from 'node:tls';
import type { Ledger } from '../core/ledger/index.js';
import { PgwError } from '../core/errors.js';
import { verifyToken } from '../admin/api-tokens.js';
import { locals } from './request-context.js';

const BEARER = /^Bearer ([A-Za-z0-9_-]{1,200})$/;

export function bearerAuth(ledger: Ledger): RequestHandler {
  // Last-use bookkeeping at most once a minute per token and process: no ledger write per request.
  const touched = new Map<string, number>();
  return (req, res, next) => {
    void (async () => {
      const m = BEARER.exec(req.headers.authorization ?? '');
      const row = m ? await verifyToken(ledger, m[1]!) : null;
      if (!row) throw new PgwError('auth.unauthorized');
      const partner = await ledger.partners.get(row.partner_id);
      if (!partner) throw new PgwError('auth.unauthorized');
      if (partner.status !== 'active') throw new PgwError('partner.disabled');
      if (partner.client_cert_sha256) {
        const cert = (req.socket as TLSSocket).getPeerCertificate?.();
        const presented = cert && 'fingerprint256' in cert ? cert.fingerprint256 : null;
        if (!presented || presented.toUpperCase() !== partner.client_cert_sha256.toUpperCase()) throw new PgwError('auth.client_certificate');
      }
      const l = locals(res);
      l.partner = partner;
      l.tokenId = row.id;
      l.log = l.log.child({ partner: partner.id });
      const now = Date.now();
      if (now - (touched.get(row.id) ?? 0) > 60_000) {
        touched.set(row.id, now);
        ledger.apiTokens.touch(row.id).catch(() => {}); // bookkeeping only; never fails a request
      }
    })().then(() => next(), next);
  };
}
