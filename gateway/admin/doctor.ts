/**
 * `pgw doctor`: what an installation needs, checked where it runs, each with a verdict and,
 * when not ok, the fix. The checks only read (and, in the data dir, write and remove one
 * probe file, and bind the configured ports for a moment): safe beside a running gateway.
 * Verdicts: see doctor-check.ts.
 */
import type { Config } from '../core/config.js';
import { gatewayVersion } from '../core/version.js';
import { redisChecks } from './doctor-redis.js';
import { ledgerChecks } from './doctor-ledger.js';
import { dataDirChecks } from './doctor-data-dir.js';
import { keyChecks, tlsCheck } from './doctor-keys.js';
import { portChecks } from './doctor-ports.js';
import type { DoctorCheck } from './doctor-check.js';

export type { DoctorCheck, Verdict } from './doctor-check.js';

export interface DoctorReport {
  version: string;
  /** The worst verdict among the checks (skip counts as ok). */
  verdict: 'ok' | 'warn' | 'fail';
  checks: DoctorCheck[];
}

export async function runDoctor(config: Config, now = new Date()): Promise<DoctorReport> {
  const ledger = await ledgerChecks(config);
  const checks = [
    ...(await redisChecks(config)),
    ...ledger.checks,
    ...(await dataDirChecks(config)),
    ...(await keyChecks(config, ledger.migrated)),
    await tlsCheck(config, now),
    ...(await portChecks(config)),
  ];
  const verdict = checks.some((c) => c.verdict === 'fail') ? 'fail' : checks.some((c) => c.verdict === 'warn') ? 'warn' : 'ok';
  return { version: gatewayVersion(), verdict, checks };
}
