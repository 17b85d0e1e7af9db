/**
 * A child process that runs the notification engine once, as a second worker process would:
 * argv[2] is the ledger URL, argv[3] the notification settings (JSON), argv[4] the holder.
 * Prints the run's report as one JSON line.
 */
import { Ledger } from '../../gateway/core/ledger/index.js';
import { silentLogger } from '../../gateway/core/logger.js';
import { Notifier } from '../../workers/notifier.js';

const ledger = await Ledger.open(process.argv[2]!, silentLogger);
try {
  const report = await new Notifier({
    ledger, settings: JSON.parse(process.argv[3]!), overdueHours: 24, timezone: 'Europe/Amsterdam', log: silentLogger, holder: process.argv[4]!,
  }).runOnce();
  process.stdout.write(`${JSON.stringify(report)}\n`);
} finally {
  await ledger.close();
}
