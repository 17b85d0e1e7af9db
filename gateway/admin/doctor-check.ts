/**
 * One line of `pgw doctor`. Verdicts: `ok`; `warn` (works, but something is at risk); `fail`
 * (the gateway would stop, refuse to start or do no work); `skip` (not applicable here, or an
 * earlier check failed).
 */
export type Verdict = 'ok' | 'warn' | 'fail' | 'skip';

export interface DoctorCheck {
  /** Stable dotted id (`redis.policy`): tests and scripts match on it. */
  id: string;
  verdict: Verdict;
  /** What was found; addresses with credentials masked, no secrets. */
  detail: string;
  /** What to do about a warn or fail; null when ok or skipped. */
  fix: string | null;
}

export const check = (id: string, verdict: Verdict, detail: string, fix: string | null = null): DoctorCheck => ({ id, verdict, detail, fix });
