/** `pgw keys …`: gateway and partner OpenPGP keys. */
import { requirePassphrase } from '../../keys/init.js';
import { GatewayKeyring, readPublishedGatewayKeys } from '../../keys/gateway-keyring.js';
import { retireGatewayKey, rotateGatewayKey } from '../../keys/gateway-rotation.js';
import { applyRevocationCertificate } from '../../keys/partner-revocation.js';
import { readFile } from 'node:fs/promises';
import { addPartnerPgpKey } from '../admin/partner-admin.js';
import { listKeys, revokePartnerPgpKey } from '../admin/key-admin.js';

import { actor, cliLogger, isoOption, print, program, table, withLedger } from './cli-kit.js';
import { withdrawForRevokedKeys } from '../admin/outbound-documents.js';
import { DataDir } from '../core/data-dir.js';
import type { Config } from '../core/config.js';
import type { Ledger } from '../core/ledger/index.js';

export const keys = program.command('keys').description('gateway and partner OpenPGP keys');
// --- keys: listing, gateway export and rotation ---
keys.command('list').description('list keys with their state and expiry warnings (30/14/7 days)').option('--partner <id>', 'only this partner\'s keys').option('--json', 'print JSON')
  .action(async (o: { partner?: string; json?: boolean }) => {
    await withLedger(async (ledger) => {
      const r = await listKeys(ledger, o.partner);
      print(r, o.json, () => table(r.keys as unknown as Record<string, unknown>[], ['owner', 'fingerprint', 'algorithm', 'state', 'not_before', 'not_after', 'warning']));
      for (const w of r.warnings) {
        process.stderr.write(`pgw: warning: ${w.owner === 'gateway' ? 'gateway' : `partner ${w.partnerId}`} key ${w.fingerprint} ${w.kind} on ${w.at} (in ${w.daysLeft} days)\n`);
      }
    });
  });
const gatewayKeys = keys.command('gateway').description('the gateway\'s own keys');
gatewayKeys.command('export').description('armored public key(s): the active one and any next one').action(async () => {
  await withLedger(async (ledger) => {
    process.stdout.write(`${await readPublishedGatewayKeys(ledger)}\n`);
  });
});
gatewayKeys.command('rotate').description('make a new "next" gateway key now; it signs from --activate-at, the old one decrypts until the overlap ends')
  .option('--activate-at <iso>', 'when the new key starts signing acks (default: now + PGW_KEY_ROTATION_LEAD_DAYS)')
  .option('--overlap-days <n>', 'days the old key keeps decrypting after activation (default: PGW_KEY_ROTATION_OVERLAP_DAYS; fractions allowed)')
  .option('--json', 'print JSON')
  .action(async (o: { activateAt?: string; overlapDays?: string; json?: boolean }) => {
    await withLedger(async (ledger, cfg) => {
      const overlap = o.overlapDays === undefined ? cfg.keys.rotationOverlapDays : Number(o.overlapDays);
      const activateAt = isoOption(o.activateAt, '--activate-at');
      const r = await rotateGatewayKey(ledger, requirePassphrase(cfg), {
        overlapDays: overlap, leadDays: cfg.keys.rotationLeadDays, actor, ...(activateAt ? { activateAt } : {}),
      });
      const out = { next: r.next.fingerprint, activateAt: r.activateAt, retiring: r.retiring };
      print(out, o.json, () => [
        `next gateway key ${out.next}: published now, signs from ${out.activateAt}`,
        ...r.retiring.map((x) => `key ${x.fingerprint} keeps decrypting until ${x.retireAt}, then retires`),
      ].join('\n'));
    });
  });
gatewayKeys.command('retire <fingerprint>').description('stop a gateway key decrypting now (or at --at), e.g. to end an overlap early; never deletes it')
  .option('--at <iso>', 'when (default now)')
  .action(async (fp: string, o: { at?: string }) => {
    await withLedger(async (ledger) => {
      const at = isoOption(o.at, '--at');
      const r = await retireGatewayKey(ledger, { fingerprint: fp, actor, ...(at ? { at } : {}) });
      process.stdout.write(`gateway key ${r.fingerprint} retires at ${r.retireAt}\n`);
    });
  });
// --- end keys ---
gatewayKeys.command('check').description('prove the passphrase unlocks the gateway keys').action(async () => {
  await withLedger(async (ledger, cfg) => {
    const kr = await GatewayKeyring.load(ledger, requirePassphrase(cfg));
    process.stdout.write(`ok: ${kr.all().length} gateway key(s) unlocked\n`);
  });
});
const partnerKeys = keys.command('partner').description('partners\' keys');
partnerKeys.command('add <id> <file>').description('add a partner PGP key').option('--activate-at <iso>', 'when it starts to count')
  .option('--expires-at <iso>', 'when it stops counting (at the latest the key\'s own expiry)')
  .action(async (id: string, file: string, o: { activateAt?: string; expiresAt?: string }) => {
    await withLedger(async (ledger) => {
      const activateAt = isoOption(o.activateAt, '--activate-at');
      const expiresAt = isoOption(o.expiresAt, '--expires-at');
      const row = await addPartnerPgpKey(ledger, id, file, { ...(activateAt ? { activateAt } : {}), ...(expiresAt ? { expiresAt } : {}) }, actor);
      process.stdout.write(`key ${row.fingerprint} added for ${id}, active from ${row.not_before}${row.not_after ? ` until ${row.not_after}` : ''}\n`);
    });
  });
// --- keys: partner key revoke and list ---
partnerKeys.command('revoke <id> <fingerprint>').description('revoke a partner PGP key: no signature by it counts from now on')
  .option('--reason <text>', 'why (kept in the audit log)')
  .option('--compromised-since <iso>', 'suspected compromise time (past); accepted batches signed since then are listed for review')
  .option('--certificate <file>', 'apply the partner\'s OpenPGP revocation certificate for this key (e.g. from gpg\'s openpgp-revocs.d)')
  .option('--json', 'print JSON')
  .action(async (id: string, fp: string, o: { reason?: string; compromisedSince?: string; certificate?: string; json?: boolean }) => {
    await withLedger(async (ledger, cfg) => {
      if (o.certificate) {
        const c = await applyRevocationCertificate(ledger, { partnerId: id, certificate: await readFile(o.certificate, 'utf8'), actor, channel: 'cli', expectFingerprint: fp });
        await withdrawDocuments(ledger, cfg, id);
        print(c, o.json, () => [`key ${c.fingerprint} revoked as of ${c.revokedAt} (${c.reason})`,
          ...(c.keysCancelled.length ? [`pending keys it had signed for, cancelled: ${c.keysCancelled.join(' ')}`] : [])].join('\n'));
        return;
      }
      const since = isoOption(o.compromisedSince, '--compromised-since');
      const r = await revokePartnerPgpKey(ledger, { partnerId: id, fingerprint: fp, reason: o.reason ?? null, actor, ...(since ? { compromisedSince: since } : {}) });
      const withdrawn = await withdrawDocuments(ledger, cfg, id);
      print(r, o.json, () => [`key ${r.fingerprint} revoked as of ${r.revokedAt}`,
        ...(r.batchesToReview.length ? [`batches to review (accepted, signed since then): ${r.batchesToReview.join(' ')}`] : []),
        ...(r.keysCancelled.length ? [`pending keys it had signed for, cancelled: ${r.keysCancelled.join(' ')}`] : []),
        ...(r.keysToReview.length ? [`keys to review (submitted with its signature since then, already active): ${r.keysToReview.join(' ')}`] : []),
        ...(withdrawn.length ? [`documents withdrawn (encrypted to this key, not picked up; the sender sees key_revoked): ${withdrawn.join(' ')}`] : [])].join('\n'));
    });
  });
partnerKeys.command('list [id]').description('partner PGP keys with state (pending, active, expired, revoked)').option('--json', 'print JSON')
  .action(async (id: string | undefined, o: { json?: boolean }) => {
    await withLedger(async (ledger) => {
      if (id) await ledger.partners.require(id);
      const rows = (await listKeys(ledger, id)).keys.filter((k) => k.owner !== 'gateway');
      print(rows, o.json, () => table(rows as unknown as Record<string, unknown>[], ['owner', 'fingerprint', 'state', 'not_before', 'not_after', 'revoked_at', 'warning']));
    });
  });

// --- partner SSH keys ---

/** Outbound documents encrypted to a key revoked just now and not picked up: withdrawn at once (the reconciler would, later). */
function withdrawDocuments(ledger: Ledger, cfg: Pick<Config, 'dataDir' | 'logLevel'>, partnerId: string): Promise<string[]> {
  return withdrawForRevokedKeys({ ledger, dataDir: new DataDir(cfg.dataDir), log: cliLogger(cfg) }, partnerId);
}
