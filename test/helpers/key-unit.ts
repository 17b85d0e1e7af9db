/** Shared bits of the keys/ unit tests: a throw-away ledger (the code a promise fails with: expect-code.ts). */
import { suiteDatabase } from './databases.js';
import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Ledger } from '../../gateway/core/ledger/index.js';
import { silentLogger } from '../../gateway/core/logger.js';

/** The suite's ledger (SQLite in a temp dir, or a throw-away PostgreSQL database); `close()` removes it. */
export async function tempLedger(prefix: string): Promise<{ ledger: Ledger; close(): Promise<void> }> {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), prefix));
  const database = await suiteDatabase(path.join(dir, 'ledger.db'));
  const ledger = await Ledger.open(database.url, silentLogger);
  // A throw-away audit chain key (as if derived from a master key), so admin actions record events.
  await ledger.audit.useKey(randomBytes(32));
  return {
    ledger,
    async close() {
      await ledger.close();
      await database.drop();
      await fsp.rm(dir, { recursive: true, force: true });
    },
  };
}
