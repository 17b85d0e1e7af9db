/**
 * Leader leases in the ledger, so that a periodic job runs in one process of a deployment
 * at a time, whichever host it is on. A lease is a row (name, holder, expires_at): a process
 * takes it when it is free or expired, and keeps it by renewing before it expires; a
 * process that dies simply stops renewing. Expiry is judged by the clock of the process that
 * asks, so a lease must be much longer than the clock skew between hosts (NTP keeps
 * it to milliseconds; leases here are tens of seconds).
 *
 * Also the installation id, which pairs a data dir with its ledger.
 */
import { randomUUID } from 'node:crypto';
import type { LedgerHandle } from './ledger.js';
import { nowIso } from './ledger.js';

export class LeaseRepo {
  constructor(private readonly h: LedgerHandle) {}

  /**
   * Take or renew lease `name` for `holder` until now + `ttlMs`. True when `holder` holds it
   * afterwards. One conditional write in a write transaction, so two processes racing for a
   * free lease cannot both win.
   */
  async acquire(name: string, holder: string, ttlMs: number, now: Date = new Date()): Promise<boolean> {
    const expiresAt = nowIso(new Date(now.getTime() + ttlMs));
    return this.h.writeTx(async (tx) => {
      const row = await tx.selectFrom('leases').selectAll().where('name', '=', name).executeTakeFirst();
      if (!row) {
        const res = await tx.insertInto('leases').values({ name, holder, expires_at: expiresAt })
          .onConflict((oc) => oc.doNothing()).executeTakeFirst();
        return Number(res.numInsertedOrUpdatedRows ?? 0) === 1;
      }
      if (row.holder !== holder && row.expires_at > nowIso(now)) return false;
      const res = await tx.updateTable('leases').set({ holder, expires_at: expiresAt })
        .where('name', '=', name).where('holder', '=', row.holder).where('expires_at', '=', row.expires_at)
        .executeTakeFirst();
      return Number(res.numUpdatedRows) === 1;
    });
  }

  /** Give the lease up (at shutdown) so another process takes over without waiting for expiry. */
  async release(name: string, holder: string): Promise<void> {
    await this.h.db.deleteFrom('leases').where('name', '=', name).where('holder', '=', holder).execute();
  }

  async holder(name: string, now: Date = new Date()): Promise<string | null> {
    const row = await this.h.db.selectFrom('leases').selectAll().where('name', '=', name).executeTakeFirst();
    return row && row.expires_at > nowIso(now) ? row.holder : null;
  }

  /** This ledger's installation id, made by the first process that asks. */
  async installationId(): Promise<string> {
    await this.h.db.insertInto('ledger_meta').values({ name: 'installation_id', value: randomUUID() })
      .onConflict((oc) => oc.doNothing()).execute();
    const row = await this.h.db.selectFrom('ledger_meta').select('value').where('name', '=', 'installation_id').executeTakeFirstOrThrow();
    return row.value;
  }
}
