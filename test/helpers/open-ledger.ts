/**
 * A child process that opens the ledger at argv[2] (applying migrations) at the wall-clock
 * time argv[3] (ms) and exits: the concurrent-start test runs several, all released at
 * the same moment once their start-up is done. Log lines go to stdout as `pgw` writes them.
 */
import { Ledger } from '../../gateway/core/ledger/index.js';
import { createLogger } from '../../gateway/core/logger.js';

await new Promise((r) => setTimeout(r, Math.max(0, Number(process.argv[3]) - Date.now())));
const ledger = await Ledger.open(process.argv[2]!, createLogger({ level: 'info' }));
await ledger.leases.installationId();
await ledger.close();
