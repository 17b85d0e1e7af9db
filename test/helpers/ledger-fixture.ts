/**
 * A fresh ledger (audit key set, partner `p1`) and a fresh data dir for one describe block:
 * `before` creates both, `after` closes and removes them. Fields are set once `before` ran.
 */
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { Ledger } from '../../gateway/core/ledger/index.js';
import { DataDir } from '../../gateway/core/data-dir.js';
import { silentLogger } from '../../gateway/core/logger.js';
import type { TestDatabase } from './databases.js';

export interface LedgerFixture { ledger: Ledger; dataDir: DataDir }

export function ledgerFixture(make: () => Promise<TestDatabase>, tmpPrefix: string): LedgerFixture {
  const f = {} as LedgerFixture;
  let tdb: TestDatabase | undefined;
  before(async () => {
    tdb = await make();
    f.ledger = await Ledger.open(tdb.url, silentLogger);
    await f.ledger.audit.useKey(randomBytes(32));
    await f.ledger.partners.create({ id: 'p1', name: 'P1' });
    f.dataDir = new DataDir(await fsp.mkdtemp(path.join(os.tmpdir(), tmpPrefix)));
    await f.dataDir.ensure();
  });
  after(async () => {
    await f.ledger?.close();
    await tdb?.drop();
    if (f.dataDir) await fsp.rm(f.dataDir.root, { recursive: true, force: true });
  });
  return f;
}
