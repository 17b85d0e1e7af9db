/**
 * Fault injection for crash tests: with `PGW_FAULT=<point>` the process kills itself with
 * SIGKILL when it reaches that point, exactly as a power cut or OOM kill would. Refused in
 * production by the config validator; a no-op when unset.
 *
 * Points: after-temp-write, after-fsync, after-rename, after-ledger, before-enqueue,
 * before-promote (decrypt output complete in quarantine), after-decrypt,
 * before-ack-publish (ack written under its temp name), after-ack-written,
 * before-outbox-rename (the ack linked under its temp name, not yet in the outbox),
 * after-outcome (an outcome of the account service recorded in the ledger, no result queued
 * yet), before-result-publish (a result written under its temp name), subject-batch-held (a
 * batch of a subject erasure or correction held against reprocess, not yet rewritten),
 * after-subject-batch (one batch of a subject erasure or correction done, the next not begun),
 * during-document-stream (an outbound document half encrypted into its temp file),
 * before-document-outbox (its ledger row written, not yet linked into the outbox).
 */
export type FaultPoint =
  | 'after-temp-write' | 'after-fsync' | 'after-rename' | 'after-ledger' | 'before-enqueue'
  | 'before-promote' | 'after-decrypt' | 'before-ack-publish' | 'after-ack-written' | 'before-outbox-rename'
  | 'after-outcome' | 'before-result-publish' | 'subject-batch-held' | 'after-subject-batch'
  | 'during-document-stream' | 'before-document-outbox';

export type FaultHook = (point: FaultPoint) => void;

export function faultHook(configured: string | null): FaultHook {
  if (!configured) return () => {};
  return (point) => {
    if (point === configured) process.kill(process.pid, 'SIGKILL');
  };
}
