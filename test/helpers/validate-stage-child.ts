/**
 * A child process that runs the validate stage once, as a worker does, on a batch already
 * promoted in an installation, and prints its verdict and its own peak RSS (VmHWM) as one JSON
 * line. The memory tests build the batch in the parent, so that only the stage's memory counts.
 *
 *   PGW_* env of the installation  node --import tsx test/helpers/validate-stage-child.ts <batchId>
 */
import { readFileSync } from 'node:fs';
import { loadConfig } from '../../gateway/core/config.js';
import { DataDir } from '../../gateway/core/data-dir.js';
import { Ledger } from '../../gateway/core/ledger/index.js';
import { silentLogger } from '../../gateway/core/logger.js';
import { DataKeys, loadMasterKey } from '../../gateway/core/sealed-blob.js';
import type { StageContext } from '../../workers/stage-context.js';
import { runValidateStage } from '../../workers/validate-stage.js';

const batchId = process.argv[2]!;
const config = loadConfig({ env: process.env });
const ledger = await Ledger.open(config.databaseUrl, silentLogger);
const dataDir = new DataDir(config.dataDir);
const dataKeys = new DataKeys(await loadMasterKey(config.dataKey, config.keyPassphrase ?? '', dataDir.keysDir));
const ctx = {
  config, ledger, dataDir, dataKeys,
  keyring: null as never, // the validate stage uses no PGP keys
  enqueuer: { enqueue: async () => {} },
  log: silentLogger,
  fault: () => {},
} as StageContext;
await runValidateStage(ctx, batchId);
const b = await ledger.batches.get(batchId);
const hwm = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
console.log(JSON.stringify({ stage: b?.stage, outcome: b?.outcome, errorCode: b?.error_code ?? null, issues: b?.record_issues ?? null, hwmKiB: Number(hwm?.[1]) }));
await ledger.close();
