/**
 * The steps the partner API's and the internal API's token authentication share: the bearer
 * token from the Authorization header (any other scheme is no token), the pinned client
 * certificate check (mutual TLS, SHA-256 fingerprint), and last-use bookkeeping.
 */
import type { Request } from 'express';
import type { TLSSocket } from 'node:tls';
import { PgwError } from '../core/errors.js';

const BEARER = /^Bearer ([A-Za-z0-9_-]{1,200})$/;

/** The token of `Authorization: Bearer <token>`, or null. */
export function bearerToken(req: Request): string | null {
  return BEARER.exec(req.headers.authorization ?? '')?.[1] ?? null;
}

/** `auth.client_certificate` unless the connection presented the certificate pinned as `sha256`. */
export function requirePinnedCertificate(req: Request, sha256: string): void {
  const cert = (req.socket as TLSSocket).getPeerCertificate?.();
  const presented = cert && 'fingerprint256' in cert ? cert.fingerprint256 : null;
  if (!presented || presented.toUpperCase() !== sha256.toUpperCase()) throw new PgwError('auth.client_certificate');
}

/**
 * Last-use bookkeeping at most once a minute per token and process: no ledger write per
 * request. A failed write is bookkeeping only and never fails a request.
 */
export function lastUseToucher(touch: (tokenId: string) => Promise<unknown>): (tokenId: string) => void {
  const touched = new Map<string, number>();
  return (tokenId) => {
    const now = Date.now();
    if (now - (touched.get(tokenId) ?? 0) > 60_000) {
      touched.set(tokenId, now);
      touch(tokenId).catch(() => {});
    }
  };
}
