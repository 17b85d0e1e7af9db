/** `pgw service …`: tokens of Babybalance's own systems for the internal API (README "Handing records on"). */
import { issueServiceToken, listServiceTokens, parseScopes, revokeServiceToken } from '../admin/service-tokens.js';

import { actor, print, program, table, withLedger } from './cli-kit.js';

const service = program.command('service').description('tokens of Babybalance\'s own systems (internal API)');
service.command('add <name>').description('a token for one system, e.g. account-service (printed once)')
  .requiredOption('--scopes <list>', 'comma-separated: handoff, outbound, subjects')
  .option('--client-cert <file.pem>', 'also require this TLS client certificate (mutual TLS)')
  .option('--json', 'print JSON')
  .action(async (name: string, o: { scopes: string; clientCert?: string; json?: boolean }) => {
    await withLedger(async (ledger) => {
      const t = await issueServiceToken(ledger, { name, scopes: parseScopes(o.scopes), clientCertFile: o.clientCert ?? null }, actor);
      // The token alone on stdout (TOKEN=$(pgw service add …)); what it is, on stderr.
      print(t, o.json, () => t.token);
      if (!o.json) process.stderr.write(`pgw: service token ${t.id} for ${t.name} (scopes ${t.scopes.join(',')}${t.clientCert ? ', client certificate pinned' : ''}); it is shown only now\n`);
    });
  });
service.command('list').description('service tokens (never their secrets)').option('--json', 'print JSON')
  .action(async (o: { json?: boolean }) => {
    await withLedger(async (ledger) => {
      const rows = await listServiceTokens(ledger);
      print(rows, o.json, () => table(rows as unknown as Record<string, unknown>[], ['id', 'name', 'scopes', 'created_at', 'last_used_at', 'revoked_at']));
    });
  });
service.command('revoke <id>').description('revoke a service token at once')
  .action(async (id: string) => {
    await withLedger(async (ledger) => {
      await revokeServiceToken(ledger, id, actor);
      process.stdout.write(`service token ${id} revoked\n`);
    });
  });
