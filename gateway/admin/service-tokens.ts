/**
 * Service tokens of the internal API (README "Handing records on"): `pgws_<id>_<secret>`, one per system of
 * Babybalance's own (the account service, billing), each with scopes. Made like partner
 * tokens (api-tokens.ts: the same id, secret, hash and constant-time comparison); the
 * prefix differs, so a partner token never parses as a service token nor the other way
 * round. Issue and revocation are audit events.
 *
 * Scopes: `handoff` (list handoffs, fetch records, report outcomes), `outbound` (documents
 * to partners), `subjects` (subject events).
 */
import type { Ledger, ServiceTokenRow } from '../core/ledger/index.js';
import { nowIso } from '../core/ledger/index.js';
import { PgwError } from '../core/errors.js';
import { hashSecret, newTokenId, newTokenSecret, secretMatches } from './api-tokens.js';
import { certFingerprint } from './partner-admin.js';

export const SERVICE_SCOPES = ['handoff', 'outbound', 'subjects'] as const;
export type ServiceScope = (typeof SERVICE_SCOPES)[number];

const NAME = /^[a-z0-9][a-z0-9-]{1,39}$/;
const TOKEN = /^pgws_([a-z2-9]{12})_([A-Za-z0-9_-]{43})$/;

export interface IssuedServiceToken {
  id: string;
  name: string;
  scopes: ServiceScope[];
  /** The whole bearer token; shown once, never stored. */
  token: string;
  clientCert: string | null;
  createdAt: string;
}

/** A verified token: who calls, and what it may do. */
export interface ServiceIdentity {
  id: string;
  name: string;
  scopes: ReadonlySet<ServiceScope>;
  clientCertSha256: string | null;
}

/** `handoff,outbound` → the scopes; `service.invalid` for an unknown or empty list. */
export function parseScopes(list: string): ServiceScope[] {
  const scopes = [...new Set(list.split(',').map((s) => s.trim()).filter(Boolean))];
  if (scopes.length === 0 || !scopes.every((s): s is ServiceScope => (SERVICE_SCOPES as readonly string[]).includes(s))) {
    throw new PgwError('service.invalid');
  }
  return scopes.sort();
}

export async function issueServiceToken(
  ledger: Ledger, input: { name: string; scopes: ServiceScope[]; clientCertFile?: string | null }, actor: string,
): Promise<IssuedServiceToken> {
  if (!NAME.test(input.name)) throw new PgwError('service.invalid');
  const scopes = parseScopes(input.scopes.join(','));
  const clientCert = input.clientCertFile ? await certFingerprint(input.clientCertFile) : null;
  const id = newTokenId();
  const secret = newTokenSecret();
  const createdAt = nowIso();
  await ledger.serviceTokens.insert({
    id, name: input.name, scopes: scopes.join(','), secret_hash: hashSecret(secret), client_cert_sha256: clientCert, created_at: createdAt, created_by: actor,
  });
  await ledger.audit.record(actor, 'service_token.issued', `service:${input.name}`, { tokenId: id, scopes, clientCert: Boolean(clientCert) });
  return { id, name: input.name, scopes, token: `pgws_${id}_${secret}`, clientCert, createdAt };
}

export async function revokeServiceToken(ledger: Ledger, tokenId: string, actor: string): Promise<void> {
  const row = await ledger.serviceTokens.get(tokenId);
  if (!row || !(await ledger.serviceTokens.revoke(tokenId))) throw new PgwError('service.token_not_found', undefined, { tokenId });
  await ledger.audit.record(actor, 'service_token.revoked', `service:${row.name}`, { tokenId });
}

/** Every service token without its hash. */
export async function listServiceTokens(ledger: Ledger): Promise<Omit<ServiceTokenRow, 'secret_hash'>[]> {
  return (await ledger.serviceTokens.list()).map(({ secret_hash: _h, ...rest }) => rest);
}

/** The service a presented bearer token belongs to, or null (unknown, malformed, revoked). */
export async function verifyServiceToken(ledger: Ledger, presented: string): Promise<ServiceIdentity | null> {
  const m = TOKEN.exec(presented);
  const row = m ? await ledger.serviceTokens.get(m[1]!) : undefined;
  const match = secretMatches(row?.secret_hash, m?.[2]);
  if (!row || !match || row.revoked_at) return null;
  return {
    id: row.id, name: row.name, clientCertSha256: row.client_cert_sha256,
    scopes: new Set(row.scopes.split(',').filter((s): s is ServiceScope => (SERVICE_SCOPES as readonly string[]).includes(s))),
  };
}
