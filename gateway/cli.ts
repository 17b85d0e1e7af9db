/**
 * The `pgw` command. Parses flags and calls services; no logic of its own. Errors are
 * printed once, here, as `pgw: <code>: <message>`, and exit non-zero.
 */
import { Option } from 'commander';
import { type Role } from './core/config.js';
import { createLogger } from './core/logger.js';
import { isPgwError } from './core/errors.js';
import { startRuntime, type Runtime } from './main.js';
import { initialise } from '../keys/init.js';
import { gatewayVersion } from './core/version.js';

import { cliLogger, config, print, program } from './cli/cli-kit.js';

program.version(gatewayVersion(), '-V, --version', 'print the version');

program.command('init').description('create data dir, SSH host keys, dev TLS cert, gateway PGP key (idempotent)')
  .option('--json', 'print JSON')
  .action(async (o: { json?: boolean }) => {
    const cfg = config();
    const r = await initialise(cfg, cliLogger(cfg));
    print(r, o.json, () => [
      `data dir     ${r.dataDir}`,
      `created      ${r.created.length ? r.created.join(', ') : 'nothing (already initialised)'}`,
      `gateway key  ${r.gatewayKeys.join('\n             ')}`,
      `host keys    ${r.hostKeys.join('\n             ')}`,
      `TLS cert     ${r.tlsCert}`,
    ].join('\n'));
  });

program.command('start').description('run the gateway and/or workers until SIGTERM')
  .addOption(new Option('--role <role>', 'which parts to run').choices(['all', 'gateway', 'worker']).default('all'))
  .action(async (o: { role: Role }) => {
    const cfg = config();
    const log = createLogger({ level: cfg.logLevel });
    // A stray rejection (e.g. from an aborted stream inside a library) must not take down a
    // process that serves every partner; the stage that owned it fails and is retried.
    process.on('unhandledRejection', (reason) => log.error('unhandled rejection', { err: reason }));
    // Signals are taken from the first moment: one that arrives while starting waits for the
    // start to finish and then stops in order (never Node's default kill mid-start), or ends
    // the wait for a PostgreSQL or Redis that does not answer.
    let rt: Runtime | null = null;
    let requested: string | null = null;
    const starting = new AbortController();
    const stop = (sig: string) => {
      if (requested) return;
      requested = sig;
      if (rt) void rt.close(sig).then(() => process.exit(0), () => process.exit(1));
      else starting.abort();
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
    try {
      rt = await startRuntime(cfg, o.role, log, { signal: starting.signal });
    } catch (err) {
      if (starting.signal.aborted) process.exit(0); // stopped while waiting: nothing to report
      throw err;
    }
    if (requested) {
      await rt.close(requested);
      process.exit(0);
    }
  });

program.command('demo').description('end-to-end demo with a throw-away partner over SFTP; prints the decrypted ack')
  .option('--json', 'print only the ack JSON')
  .action(async (o: { json?: boolean }) => {
    const { runDemo } = await import('./demo.js'); // ssh2's client: only the demo needs it
    await runDemo(config(), { json: Boolean(o.json), out: process.stdout });
  });

await import('./cli/doctor-commands.js');

// Command groups register themselves on `program`, in this order (as --help lists them).
await import('./cli/partner-commands.js');
await import('./cli/key-commands.js');
await import('./cli/batch-commands.js');
await import('./cli/data-commands.js');
await import('./cli/subject-commands.js');
await import('./cli/operator-commands.js');
await import('./cli/service-commands.js');
await import('./cli/handoff-commands.js');
await import('./cli/document-commands.js');
await import('./cli/backup-commands.js');

program.parseAsync(process.argv).catch((err: unknown) => {
  if (isPgwError(err)) process.stderr.write(`pgw: ${err.code}: ${err.message}\n`);
  else process.stderr.write(`pgw: error: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}\n`);
  process.exit(1);
});
