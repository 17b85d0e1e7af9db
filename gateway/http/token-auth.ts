/**
 * The token authentication the partner API and the internal API share: the bearer token from
 * the Authorization header (any other scheme is no token), the pinned client certificate
 * check (mutual TLS, SHA-256 fingerprint), and last-use bookkeeping. Each edge says only how
 * its token resolves to a caller and what it records on the request.
 */
import type { Request, RequestHandler } from 'express';
import type { TLSSocket } from 'node:tls';
import { PgwError } from '../core/errors.js';
import { locals, type RequestLocals } from './request-context.js';

/** Who a valid token names, as the edge resolved it. */
export interface TokenHolder {
  tokenId: string;
  /** The client certificate the holder registered (SHA-256 fingerprint), if any. */
  clientCertSha256: string | null;
  /** Records the holder on the request (its logger fields, `partner` or `service`). */
  attach(l: RequestLocals): void;
}

/**
 * The middleware: 401 `auth.unauthorized` unless `resolve` finds a holder for the token
 * (`resolve` may throw its own refusal, e.g. a disabled partner), then the pinned certificate,
 * then the holder is recorded and its last use touched.
 */
export function tokenAuth(
  resolve: (token: string) => Promise<TokenHolder | null>,
  touchToken: (tokenId: string) => Promise<unknown>,
): RequestHandler {
  const touch = lastUseToucher(touchToken);
  return (req, res, next) => {
    void (async () => {
      const token = bearerToken(req);
      const holder = token ? await resolve(token) : null;
      if (!holder) throw new PgwError('auth.unauthorized');
      if (holder.clientCertSha256) requirePinnedCertificate(req, holder.clientCertSha256);
      const l = locals(res);
      l.tokenId = holder.tokenId;
      holder.attach(l);
      touch(holder.tokenId);
    })().then(() => next(), next);
  };
}

const BEARER = /^Bearer ([A-Za-z0-9_-]{1,200})$/;

/** The token of `Authorization: Bearer <token>`, or null. */
function bearerToken(req: Request): string | null {
  return BEARER.exec(req.headers.authorization ?? '')?.[1] ?? null;
}

/** `auth.client_certificate` unless the connection presented the certificate pinned as `sha256`. */
function requirePinnedCertificate(req: Request, sha256: string): void {
  const cert = (req.socket as TLSSocket).getPeerCertificate?.();
  const presented = cert && 'fingerprint256' in cert ? cert.fingerprint256 : null;
  if (!presented || presented.toUpperCase() !== sha256.toUpperCase()) throw new PgwError('auth.client_certificate');
}

/**
 * Last-use bookkeeping at most once a minute per token and process: no ledger write per
 * request. A failed write is bookkeeping only and never fails a request.
 */
function lastUseToucher(touch: (tokenId: string) => Promise<unknown>): (tokenId: string) => void {
  const touched = new Map<string, number>();
  return (tokenId) => {
    const now = Date.now();
    if (now - (touched.get(tokenId) ?? 0) > 60_000) {
      touched.set(tokenId, now);
      touch(tokenId).catch(() => {});
    }
  };
}
