/**
 * Ledger tables of the handoff to Babybalance's own systems (README "Handing records on"): the handoff of
 * each live batch's accepted records, the per-record outcomes the account service reports,
 * the signed result documents made from them, their webhook pushes, and the service tokens
 * of the internal API.
 *
 * Glossary:
 * - **handoff**: one row per batch with accepted records (live lane only). Its `version`
 *   starts at 1 and goes up each time a reprocessed batch is handed off again, so the
 *   service can tell a new version of the records from the one it already had.
 * - **state**: `ready` (the records wait for the service) → `taken` (the service fetched
 *   them) → `confirmed` (it reported an outcome for every record); `withdrawn` while a
 *   reprocess is replacing them; `expired` when retention purged them unconfirmed
 *   (`PGW_HANDOFF_UNCONFIRMED=purge`, only after they were noted overdue). **Overdue** is
 *   not a state: a handoff ready or taken longer than `PGW_HANDOFF_OVERDUE_HOURS` is overdue.
 * - **released**: after the result document is made, the accepted-records file (and the
 *   payload it came from) is deleted and the batch's data key shredded.
 * - **result**: the `pgw.result` document to the partner, one per handoff version, like an ack.
 */

export type HandoffState = 'ready' | 'taken' | 'confirmed' | 'withdrawn' | 'expired';
export type RecordOutcome = 'created' | 'exists' | 'failed';

export interface HandoffsTable {
  batch_id: string;
  version: number;
  state: HandoffState;
  /** Accepted records handed off with this version. */
  records: number;
  ready_at: string;
  /** First fetch of this version's records, and by which service token. */
  taken_at: string | null;
  taken_by: string | null;
  confirmed_at: string | null;
  confirmed_by: string | null;
  /** SHA-256 of the outcome as accepted (canonical form): the same body again is 200, another 409. */
  outcome_sha256: string | null;
  outcome_created: number | null;
  outcome_exists: number | null;
  outcome_failed: number | null;
  /** When this version was first seen overdue (an event was raised then, once). */
  overdue_at: string | null;
  /** When the accepted records were deleted and the data key shredded (after the result). */
  released_at: string | null;
  updated_at: string;
}

/** One row per record of a confirmed handoff version: the outcome and the service's code, nothing else. */
export interface HandoffOutcomesTable {
  batch_id: string;
  version: number;
  record: number;
  outcome: RecordOutcome;
  code: string | null;
}

/** The one result document of each handoff version: the same columns as `acks` (schema.ts). */
export type { AcksTable as ResultsTable } from './schema.js';

/** Service tokens of the internal API: `pgws_<id>_<secret>`; only SHA-256(secret) is kept. */
export interface ServiceTokensTable {
  id: string;
  /** The system the token is for, e.g. `account-service`. */
  name: string;
  /** Comma-separated scopes: handoff, outbound, subjects. */
  scopes: string;
  secret_hash: string;
  /** Mutual TLS: the SHA-256 fingerprint of the client certificate the service must present. */
  client_cert_sha256: string | null;
  created_at: string;
  created_by: string;
  revoked_at: string | null;
  last_used_at: string | null;
}
