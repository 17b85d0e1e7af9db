/**
 * `pgw start`'s way to open a PostgreSQL ledger: when the server does not answer (not up yet
 * after a reboot, restarting, a network gap), say so once — address with credentials masked,
 * cause, what to check — and try again with backoff until it answers or the start is called
 * off, then say once that it answers. Anything else (a wrong password, a failed migration)
 * ends the start at once, as before. SQLite is a local file: nothing to wait for.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '../logger.js';
import { isConnectionError, OutageLog } from '../outage-log.js';
import { Ledger } from './index.js';

const FIRST_RETRY_MS = 1000;
const MAX_RETRY_MS = 30_000;

export async function openLedgerRetrying(databaseUrl: string, log: Logger, signal?: AbortSignal): Promise<Ledger> {
  if (databaseUrl.startsWith('sqlite:')) return Ledger.open(databaseUrl, log);
  const outage = new OutageLog(log, {
    service: 'PostgreSQL',
    url: databaseUrl,
    check: 'is the server running and reachable there, and is PGW_DATABASE_URL right (host, port, database)?',
    code: 'ledger.unreachable',
  });
  for (let wait = FIRST_RETRY_MS; ; wait = Math.min(wait * 2, MAX_RETRY_MS)) {
    signal?.throwIfAborted();
    try {
      const ledger = await Ledger.open(databaseUrl, log);
      outage.up();
      return ledger;
    } catch (err) {
      if (!isConnectionError(err)) throw err;
      outage.down(err);
    }
    await sleep(wait, undefined, { signal });
  }
}
