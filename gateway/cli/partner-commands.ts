/** `pgw partner …`: partners, their webhook, client certificate, API tokens and SSH keys. */
import { DataDir } from '../core/data-dir.js';
import { addPartner, setPartnerStatus, showPartner, updatePartner } from '../admin/partner-admin.js';
import { addPartnerSshKey, removePartnerSshKey } from '../admin/key-admin.js';
import { issueToken, listTokens, revokeToken } from '../admin/api-tokens.js';
import { parseSchedule } from '../admin/schedule.js';
import { changePartnerContacts } from '../admin/partner-contacts.js';

import { actor, collect, print, program, table, warnWebhookHost, withLedger } from './cli-kit.js';

const partner = program.command('partner').description('partners and their credentials');
partner.command('add <id>').description('register a partner')
  .requiredOption('--name <text>', 'display name')
  .option('--ssh-key <file.pub>', 'OpenSSH public key file (repeatable)', collect, [])
  .option('--pgp-key <file.asc>', 'OpenPGP public key file (repeatable)', collect, [])
  .option('--webhook <https-url>', 'where acks are pushed (the host must be in PGW_WEBHOOK_ALLOWED_HOSTS)')
  .option('--client-cert <file.pem>', 'require this TLS client certificate on the HTTPS API (mutual TLS)')
  .option('--allow-bsn-placeholder', 'accept BSN 999999999 (identity not established) with a warning')
  .option('--json', 'print JSON')
  .action(async (id: string, o: { name: string; sshKey: string[]; pgpKey: string[]; webhook?: string; clientCert?: string; allowBsnPlaceholder?: boolean; json?: boolean }) => {
    await withLedger(async (ledger, cfg) => {
      const p = await addPartner(ledger, new DataDir(cfg.dataDir), {
        id, name: o.name, sshKeyFiles: o.sshKey, pgpKeyFiles: o.pgpKey, webhookUrl: o.webhook ?? null,
        clientCertFile: o.clientCert ?? null, allowBsnPlaceholder: Boolean(o.allowBsnPlaceholder), actor,
      });
      if (o.webhook) warnWebhookHost(cfg, o.webhook);
      print(p, o.json, () => `partner ${p.id} added (${o.sshKey.length} ssh key file(s), ${o.pgpKey.length} pgp key(s))`);
      if (o.pgpKey.length === 0) process.stderr.write('pgw: warning: no PGP key: batches cannot be verified nor acks encrypted until one is added (pgw keys partner add)\n');
      if (o.sshKey.length === 0) process.stderr.write('pgw: warning: no SSH key: the partner cannot log in over SFTP yet\n');
    });
  });
partner.command('list').description('list partners').option('--json', 'print JSON')
  .action(async (o: { json?: boolean }) => {
    await withLedger(async (ledger) => {
      const rows = await ledger.partners.list();
      print(rows, o.json, () => table(rows, ['id', 'name', 'status', 'created_at']));
    });
  });
partner.command('show <id>').description('one partner with its keys').option('--json', 'print JSON')
  .action(async (id: string, o: { json?: boolean }) => {
    await withLedger(async (ledger) => {
      const d = { ...(await showPartner(ledger, id)), contacts: await ledger.notifications.contacts(id) };
      print(d, o.json, () => [
        `${d.partner.id}  ${d.partner.name}  (${d.partner.status})`,
        `notification contacts: ${d.contacts.join(', ') || 'none'}`,
        `webhook: ${d.partner.webhook_url ?? 'none'}   client certificate: ${d.partner.client_cert_sha256 ?? 'not required'}`,
        `API tokens: ${d.tokens.filter((t) => !t.revoked_at).map((t) => t.id).join(', ') || 'none'}`,
        '', 'SSH keys:', table(d.sshKeys as unknown as Record<string, unknown>[], ['fingerprint', 'algorithm', 'comment', 'revoked_at']),
        '', 'PGP keys:', table(d.pgpKeys as unknown as Record<string, unknown>[], ['fingerprint', 'algorithm', 'not_before', 'not_after', 'revoked_at']),
      ].join('\n'));
    });
  });
partner.command('set <id>').description('change a partner\'s webhook, TLS client certificate, schedule or contact addresses')
  .option('--webhook <https-url|none>', 'where acks are pushed; "none" removes it')
  .option('--client-cert <file.pem|none>', 'require this TLS client certificate; "none" stops requiring one')
  .option('--expect <schedule|none>', 'when batches are due, e.g. "mon-fri 10:00" (PGW_TIMEZONE); the console flags the partner late after it')
  .option('--contact-email <addr|none>', 'add an address notifications are mailed to (repeatable); "none" removes them all', collect, [])
  .option('--remove-contact-email <addr>', 'stop mailing this address (repeatable)', collect, [])
  .option('--json', 'print JSON')
  .action(async (id: string, o: { webhook?: string; clientCert?: string; expect?: string; contactEmail: string[]; removeContactEmail: string[]; json?: boolean }) => {
    await withLedger(async (ledger, cfg) => {
      if (o.expect !== undefined && o.expect !== 'none') parseSchedule(o.expect);
      const contactChanges = o.contactEmail.length > 0 || o.removeContactEmail.length > 0;
      const contacts = contactChanges ? await changePartnerContacts(ledger, id, {
        add: o.contactEmail.filter((a) => a !== 'none'), remove: o.removeContactEmail, clear: o.contactEmail.includes('none'),
      }, actor) : await ledger.notifications.contacts(id);
      if (contactChanges && o.webhook === undefined && o.clientCert === undefined && o.expect === undefined) {
        const p = await ledger.partners.require(id);
        print({ ...p, contacts }, o.json, () => `partner ${p.id}: contacts ${contacts.join(', ') || 'none'}`);
        return;
      }
      const p = await updatePartner(ledger, id, {
        ...(o.webhook !== undefined ? { webhookUrl: o.webhook === 'none' ? null : o.webhook } : {}),
        ...(o.clientCert !== undefined ? { clientCertFile: o.clientCert === 'none' ? null : o.clientCert } : {}),
        ...(o.expect !== undefined ? { expectedSchedule: o.expect === 'none' ? null : o.expect.trim().toLowerCase() } : {}),
      }, actor);
      if (p.webhook_url) warnWebhookHost(cfg, p.webhook_url);
      print({ ...p, contacts }, o.json, () => `partner ${p.id}: webhook ${p.webhook_url ?? 'none'}, client certificate ${p.client_cert_sha256 ?? 'not required'}, contacts ${contacts.join(', ') || 'none'}`);
    });
  });
partner.command('token <id>').description('print a new API token (shown once); --list or --revoke manage existing ones')
  .option('--label <text>', 'what the token is for (shown in listings)')
  .option('--list', 'list the partner\'s tokens (ids only, never secrets)')
  .option('--revoke <token-id>', 'revoke a token: it stops working at once')
  .option('--json', 'print JSON')
  .action(async (id: string, o: { label?: string; list?: boolean; revoke?: string; json?: boolean }) => {
    await withLedger(async (ledger) => {
      if (o.list) {
        const rows = await listTokens(ledger, id);
        print(rows, o.json, () => table(rows as unknown as Record<string, unknown>[], ['id', 'label', 'created_at', 'created_by', 'last_used_at', 'revoked_at']));
      } else if (o.revoke) {
        await revokeToken(ledger, id, o.revoke, actor);
        print({ revoked: o.revoke }, o.json, () => `token ${o.revoke} revoked`);
      } else {
        const t = await issueToken(ledger, id, actor, o.label ?? null);
        print(t, o.json, () => t.token);
        if (!o.json) process.stderr.write(`pgw: token ${t.id} for ${id}: shown once, store it now (Authorization: Bearer <token>)\n`);
      }
    });
  });
for (const [cmd, status] of [['disable', 'disabled'], ['enable', 'active']] as const) {
  partner.command(`${cmd} <id>`).description(`${cmd} a partner`).action(async (id: string) => {
    await withLedger(async (ledger) => {
      await setPartnerStatus(ledger, id, status, actor);
      process.stdout.write(`partner ${id} ${status}\n`);
    });
  });
}


const sshKeys = partner.command('ssh-key').description('a partner\'s authorised SSH keys');
sshKeys.command('add <id> <file>').description('authorise the key(s) in an OpenSSH .pub file').action(async (id: string, file: string) => {
  await withLedger(async (ledger) => {
    const fps = await addPartnerSshKey(ledger, id, file, actor);
    process.stdout.write(`${fps.map((f) => `ssh key ${f} added for ${id}`).join('\n')}\n`);
  });
});
sshKeys.command('remove <id> <fingerprint>').description('withdraw an SSH key (SHA256:…); takes effect at the next login').action(async (id: string, fp: string) => {
  await withLedger(async (ledger) => {
    await removePartnerSshKey(ledger, id, fp, actor);
    process.stdout.write('ssh key removed\n');
  });
});
// --- end partner SSH keys ---
