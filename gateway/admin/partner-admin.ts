/**
 * Operator actions on partners and keys (called by the CLI, later by the console). Each
 * change of a person's doing is an audit event.
 */
import { promises as fsp } from 'node:fs';
import type { Ledger, Partner, PgpKeyRow, SshKeyRow } from '../core/ledger/index.js';
import type { DataDir } from '../core/data-dir.js';
import { PgwError } from '../core/errors.js';
import { parseAuthorizedKey } from '../../keys/ssh-host-keys.js';
import { addPartnerKey } from '../../keys/partner-keys.js';

export interface AddPartnerInput {
  id: string;
  name: string;
  sshKeyFiles: string[];
  pgpKeyFiles: string[];
  webhookUrl?: string | null;
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
  if (input.webhookUrl && !/^https:\/\/[^\s]+$/.test(input.webhookUrl)) throw new PgwError('config.invalid', 'the webhook must be an https:// URL');
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
  for (const k of ssh) await ledger.partners.addSshKey({ partnerId: partner.id, ...k });
  for (const armored of pgp) await addPartnerKey(ledger, partner.id, armored);
  await dataDir.ensurePartner(partner.id);
  await ledger.audit.record(input.actor, 'partner.added', partner.id, {
    sshKeys: ssh.map((k) => k.fingerprint), pgpKeys: pgp.length, webhook: Boolean(input.webhookUrl),
  });
  return partner;
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
  pgpKeys: Omit<PgpKeyRow, 'public_armored' | 'private_armored'>[];
}

export async function showPartner(ledger: Ledger, id: string): Promise<PartnerDetail> {
  const partner = await ledger.partners.require(id);
  const pgpKeys = (await ledger.pgpKeys.partnerKeys(id)).map(({ public_armored: _p, private_armored: _s, ...rest }) => rest);
  return { partner, sshKeys: await ledger.partners.sshKeys(id), pgpKeys };
}
