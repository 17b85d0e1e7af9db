/** Partners and their authorised SSH keys. */
import type { Kysely, Selectable } from 'kysely';
import type { DB, PartnersTable, SshKeysTable } from './schema.js';
import { nowIso, type LedgerHandle } from './ledger.js';
import { PgwError } from '../errors.js';

export type Partner = Selectable<PartnersTable>;
export type SshKeyRow = Selectable<SshKeysTable>;

export const PARTNER_ID = /^[a-z0-9][a-z0-9-]{1,39}$/;

export class PartnerRepo {
  constructor(private readonly h: LedgerHandle) {}

  private get db(): Kysely<DB> {
    return this.h.db;
  }

  async create(p: { id: string; name: string; webhookUrl?: string | null; allowBsnPlaceholder?: boolean }): Promise<Partner> {
    if (!PARTNER_ID.test(p.id)) throw new PgwError('partner.id_invalid');
    const at = nowIso();
    const row: PartnersTable = {
      id: p.id, name: p.name, status: 'active', webhook_url: p.webhookUrl ?? null,
      allow_bsn_placeholder: p.allowBsnPlaceholder ? 1 : 0, client_cert_sha256: null, expected_schedule: null, created_at: at, updated_at: at,
    };
    const res = await this.db.insertInto('partners').values(row).onConflict((oc) => oc.doNothing()).executeTakeFirst();
    if (Number(res.numInsertedOrUpdatedRows ?? 0n) !== 1) throw new PgwError('partner.exists', undefined, { partner: p.id });
    return row;
  }

  async get(id: string): Promise<Partner | undefined> {
    return this.db.selectFrom('partners').selectAll().where('id', '=', id).executeTakeFirst();
  }

  async require(id: string): Promise<Partner> {
    const p = await this.get(id);
    if (!p) throw new PgwError('partner.not_found', undefined, { partner: id });
    return p;
  }

  async list(): Promise<Partner[]> {
    return this.db.selectFrom('partners').selectAll().orderBy('id').execute();
  }

  async setStatus(id: string, status: 'active' | 'disabled'): Promise<void> {
    const res = await this.db.updateTable('partners').set({ status, updated_at: nowIso() }).where('id', '=', id).executeTakeFirst();
    if (Number(res.numUpdatedRows) !== 1) throw new PgwError('partner.not_found', undefined, { partner: id });
  }

  /** Change the webhook and/or the mutual-TLS client certificate (null clears it). */
  async update(id: string, patch: { webhookUrl?: string | null; clientCertSha256?: string | null; expectedSchedule?: string | null }): Promise<void> {
    const set: Partial<PartnersTable> = { updated_at: nowIso() };
    if (patch.expectedSchedule !== undefined) set.expected_schedule = patch.expectedSchedule;
    if (patch.webhookUrl !== undefined) set.webhook_url = patch.webhookUrl;
    if (patch.clientCertSha256 !== undefined) set.client_cert_sha256 = patch.clientCertSha256;
    const res = await this.db.updateTable('partners').set(set).where('id', '=', id).executeTakeFirst();
    if (Number(res.numUpdatedRows) !== 1) throw new PgwError('partner.not_found', undefined, { partner: id });
  }

  async addSshKey(k: { partnerId: string; fingerprint: string; algorithm: string; publicKey: string; comment: string | null }): Promise<void> {
    const res = await this.db.insertInto('ssh_keys').values({
      fingerprint: k.fingerprint, partner_id: k.partnerId, algorithm: k.algorithm, public_key: k.publicKey,
      comment: k.comment, created_at: nowIso(), revoked_at: null,
    }).onConflict((oc) => oc.doNothing()).executeTakeFirst();
    if (Number(res.numInsertedOrUpdatedRows ?? 0n) !== 1) throw new PgwError('key.exists', undefined, { fingerprint: k.fingerprint });
  }

  async sshKeys(partnerId: string): Promise<SshKeyRow[]> {
    return this.db.selectFrom('ssh_keys').selectAll().where('partner_id', '=', partnerId).orderBy('created_at').execute();
  }

  /** Active (not revoked) SSH keys of an active partner, for authentication. */
  async activeSshKeys(partnerId: string): Promise<SshKeyRow[]> {
    return this.db.selectFrom('ssh_keys').innerJoin('partners', 'partners.id', 'ssh_keys.partner_id')
      .selectAll('ssh_keys')
      .where('ssh_keys.partner_id', '=', partnerId).where('ssh_keys.revoked_at', 'is', null)
      .where('partners.status', '=', 'active').execute();
  }

  /** Withdraw an SSH key (kept for the record); the next authentication no longer accepts it. */
  async revokeSshKey(partnerId: string, fingerprint: string, at: string = nowIso()): Promise<boolean> {
    const res = await this.db.updateTable('ssh_keys').set({ revoked_at: at })
      .where('partner_id', '=', partnerId).where('fingerprint', '=', fingerprint).where('revoked_at', 'is', null).executeTakeFirst();
    return Number(res.numUpdatedRows) === 1;
  }
}
