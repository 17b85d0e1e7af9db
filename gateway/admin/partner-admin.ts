/**
 * Operator actions on partners and keys (called by the CLI, later by the console). Each
 * change of a person's doing is an audit event.
 */
import { promises as fsp } from 'node:fs';
import { X509Certificate } from 'node:crypto';
import type { ApiTokenRow, Ledger, Partner, PgpKeyRow, SshKeyRow } from '../core/ledger/index.js';
import type { DataDir } from '../core/data-dir.js';
import { PgwError } from '../core/errors.js';
import { parseAuthorizedKey } from '../../keys/ssh-host-keys.js';
import { addPartnerKey } from '../../keys/partner-keys.js';
import { parseWebhookUrl } from '../core/webhook-target.js';

export interface AddPartnerInput {
  id: string;
  name: string;
  sshKeyFiles: string[];
  pgpKeyFiles: string[];
  webhookUrl?: string | null;
  /** PEM file of the partner's TLS client certificate: mutual TLS on the HTTPS API. */
  clientCertFile?: string | null;
  allowBsnPlaceholder?: boolean;
  actor: string;
}

async function readKeyFile(file: string): Promise<string> {
  try {
    return await fsp.readFile(file, 'utf8');
  } catch {
    throw new PgwError('key.invalid', `cannot read ${file}`);
  }
}

/** Register a partner with its SSH and PGP keys; all keys are checked before anything is stored. */
export async function addPartner(ledger: Ledger, dataDir: DataDir, input: AddPartnerInput): Promise<Partner> {
  if (input.webhookUrl) parseWebhookUrl(input.webhookUrl);
  const clientCert = input.clientCertFile ? await certFingerprint(input.clientCertFile) : null;
  const ssh = [];
  for (const f of input.sshKeyFiles) {
    for (const line of (await readKeyFile(f)).split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'))) {
      ssh.push(parseAuthorizedKey(line));
    }
  }
  const pgp = await Promise.all(input.pgpKeyFiles.map(readKeyFile));
  const partner = await ledger.partners.create({
    id: input.id, name: input.name, webhookUrl: input.webhookUrl ?? null, allowBsnPlaceholder: input.allowBsnPlaceholder ?? false,
  });
  if (clientCert) await ledger.partners.update(partner.id, { clientCertSha256: clientCert });
  for (const k of ssh) await ledger.partners.addSshKey({ partnerId: partner.id, ...k });
  for (const armored of pgp) await addPartnerKey(ledger, partner.id, armored);
  await dataDir.ensurePartner(partner.id);
  await ledger.audit.record(input.actor, 'partner.added', partner.id, {
    sshKeys: ssh.map((k) => k.fingerprint), pgpKeys: pgp.length, webhook: Boolean(input.webhookUrl), clientCert,
  });
  return (await ledger.partners.get(partner.id))!;
}

/** SHA-256 fingerprint of a PEM certificate, as Node reports a peer's (`AB:CD:…`). */
export async function certFingerprint(file: string): Promise<string> {
  let pem: string;
  try {
    pem = await fsp.readFile(file, 'utf8');
    return new X509Certificate(pem).fingerprint256;
  } catch {
    throw new PgwError('key.invalid', `cannot read a PEM certificate from ${file}`);
  }
}

export interface PartnerChanges {
  /** A URL, or null to remove the webhook. */
  webhookUrl?: string | null;
  /** A PEM file, or null to stop requiring a client certificate. */
  clientCertFile?: string | null;
  /** Expected-batch calendar (see schedule.ts), or null for none. */
  expectedSchedule?: string | null;
}

/** Change a partner's webhook or client certificate; an audit event says what changed (not the URL). */
export async function updatePartner(ledger: Ledger, id: string, changes: PartnerChanges, actor: string): Promise<Partner> {
  await ledger.partners.require(id);
  const patch: { webhookUrl?: string | null; clientCertSha256?: string | null; expectedSchedule?: string | null } = {};
  if (changes.expectedSchedule !== undefined) patch.expectedSchedule = changes.expectedSchedule;
  if (changes.webhookUrl !== undefined) patch.webhookUrl = changes.webhookUrl === null ? null : parseWebhookUrl(changes.webhookUrl).href;
  if (changes.clientCertFile !== undefined) patch.clientCertSha256 = changes.clientCertFile === null ? null : await certFingerprint(changes.clientCertFile);
  await ledger.partners.update(id, patch);
  await ledger.audit.record(actor, 'partner.updated', id, {
    ...(patch.webhookUrl !== undefined ? { webhook: patch.webhookUrl === null ? 'removed' : new URL(patch.webhookUrl).host } : {}),
    ...(patch.clientCertSha256 !== undefined ? { clientCert: patch.clientCertSha256 } : {}),
    ...(patch.expectedSchedule !== undefined ? { expectedSchedule: patch.expectedSchedule } : {}),
  });
  return (await ledger.partners.get(id))!;
}

export async function setPartnerStatus(ledger: Ledger, id: string, status: 'active' | 'disabled', actor: string): Promise<void> {
  await ledger.partners.setStatus(id, status);
  await ledger.audit.record(actor, status === 'active' ? 'partner.enabled' : 'partner.disabled', id);
}

export async function addPartnerPgpKey(
  ledger: Ledger, id: string, file: string, window: { activateAt?: Date; expiresAt?: Date }, actor: string,
): Promise<PgpKeyRow> {
  const row = await addPartnerKey(ledger, id, await readKeyFile(file), window);
  await ledger.audit.record(actor, 'partner_key.added', id, { fingerprint: row.fingerprint, notBefore: row.not_before, notAfter: row.not_after });
  return row;
}

export interface PartnerDetail {
  partner: Partner;
  sshKeys: SshKeyRow[];
  /** API tokens without their hashes. */
  tokens: Omit<ApiTokenRow, 'secret_hash'>[];
  pgpKeys: Omit<PgpKeyRow, 'public_armored' | 'private_armored'>[];
}

export async function showPartner(ledger: Ledger, id: string): Promise<PartnerDetail> {
  const partner = await ledger.partners.require(id);
  const pgpKeys = (await ledger.pgpKeys.partnerKeys(id)).map(({ public_armored: _p, private_armored: _s, ...rest }) => rest);
  const tokens = (await ledger.apiTokens.list(id)).map(({ secret_hash: _h, ...rest }) => rest);
  return { partner, sshKeys: await ledger.partners.sshKeys(id), pgpKeys, tokens };
}
