/** `pgw doctor`: prints the checks of admin/doctor.ts; exits non-zero when one fails. */
import { runDoctor } from '../admin/doctor.js';
import { config, print, program, table } from './cli-kit.js';

program.command('doctor').description('check Redis, the database, the data dir, keys, TLS certificate and ports; a fix per problem')
  .option('--json', 'print JSON')
  .action(async (o: { json?: boolean }) => {
    const report = await runDoctor(config());
    const count = (v: string) => report.checks.filter((c) => c.verdict === v).length;
    print(report, o.json, () => {
      const rows = report.checks.map((c) => ({ verdict: c.verdict, check: c.id, detail: c.detail, fix: c.fix ?? '' }));
      const fails = count('fail');
      const warns = count('warn');
      const summary = fails > 0
        ? `${fails} failed, ${warns} warning(s): the gateway would not start or not work; fix the failed lines first`
        : `no failures, ${warns} warning(s)${warns > 0 ? ': the gateway runs, but see the fixes' : ''}`;
      return `pgw ${report.version} doctor\n${table(rows, ['verdict', 'check', 'detail', 'fix'])}\n${summary}`;
    });
    if (report.verdict === 'fail') process.exitCode = 1;
  });
