/**
 * Ledger tables (the system of record). Times are ISO-8601 UTC strings with milliseconds,
 * which sort correctly as text on both SQLite and PostgreSQL.
 *
 * Glossary:
 * - **stage**: the next piece of work a batch needs: `decrypt` → `validate` → `ack` → `done`.
 *   The reconciler re-enqueues every batch whose stage is not `done`.
 * - **outcome**: the verdict once known: `accepted`, `partially_accepted`, `rejected`.
 * - **lane**: `live`, or `test` (uploaded into /inbox/test: same pipeline, never handed on).
 */
import type { Generated } from 'kysely';
import type { HandoffsTable, HandoffOutcomesTable, ResultsTable, ServiceTokensTable } from './handoff-schema.js';
import type { NotificationsTable, PartnerContactsTable } from './notification-schema.js';
import type { OutboundDocumentsTable } from './document-schema.js';

export type * from './handoff-schema.js';
export type * from './notification-schema.js';
export type * from './document-schema.js';

export type Stage = 'decrypt' | 'validate' | 'ack' | 'done';
export type Outcome = 'accepted' | 'partially_accepted' | 'rejected';
export type Lane = 'live' | 'test';
export type Channel = 'sftp' | 'https';

export interface PartnersTable {
  id: string;
  name: string;
  status: 'active' | 'disabled';
  webhook_url: string | null;
  /** 1 when the partner may send the BSN placeholder 999999999 (reported as a warning). */
  allow_bsn_placeholder: number;
  /** Mutual TLS: SHA-256 fingerprint (upper-case hex with colons, as Node prints it) the client must present. */
  client_cert_sha256: string | null;
  /** Expected-batch calendar, e.g. `mon-fri 10:00` (local time): later without a batch = late. */
  expected_schedule: string | null;
  created_at: string;
  updated_at: string;
}

export interface SshKeysTable {
  fingerprint: string; // SHA256:base64, as OpenSSH prints it
  partner_id: string;
  algorithm: string;
  public_key: string; // "<type> <base64>"
  comment: string | null;
  created_at: string;
  revoked_at: string | null;
}

export interface PgpKeysTable {
  fingerprint: string; // primary key fingerprint, lower-case hex
  owner: 'gateway' | 'partner';
  partner_id: string | null;
  /** JSON array of lower-case hex fingerprints of the primary key and all subkeys. */
  key_fingerprints: string;
  algorithm: string;
  public_armored: string;
  /** Gateway keys only: armored private key, itself encrypted with the key passphrase. */
  private_armored: string | null;
  key_created_at: string;
  /** Our validity window; signatures and acks count only inside it. */
  not_before: string;
  not_after: string | null;
  revoked_at: string | null;
  revocation_reason: string | null;
  /**
   * Partner keys submitted by the partner (self-service): the fingerprint of the partner key
   * whose signature authorised the submission. Revoking that key cancels this one while it
   * is still pending (keys/signer-revocation.ts). Null for keys an operator added.
   */
  signed_by: string | null;
  created_at: string;
}

export interface BatchesTable {
  id: string;
  partner_id: string;
  channel: Channel;
  lane: Lane;
  file_name: string;
  sha256: string;
  size: number;
  received_at: string;
  stage: Stage;
  outcome: Outcome | null;
  error_code: string | null;
  /** JSON object of safe facts about the error (fingerprints, dates, limits). */
  error_detail: string | null;
  duplicate_of: string | null;
  /** Wrapped per-batch data key (see core/sealed-blob.ts); null once shredded. */
  data_key: string | null;
  signer_fingerprint: string | null;
  signed_at: string | null;
  decrypt_key_fingerprint: string | null;
  schema: string | null;
  reference: string | null;
  records_total: number | null;
  records_accepted: number | null;
  records_rejected: number | null;
  /** JSON array of per-record errors and warnings (no personal data). */
  record_issues: string | null;
  processed_at: string | null;
  acked_at: string | null;
  ack_version: number | null;
  updated_at: string;
  /** Retention (see workers/retention.ts): when each class of this batch's data was removed. */
  received_purged_at: string | null;
  payload_purged_at: string | null;
  acks_purged_at: string | null;
  anonymised_at: string | null;
}

export interface BatchDigestsTable {
  partner_id: string;
  lane: Lane;
  sha256: string;
  batch_id: string;
}

export interface BatchEventsTable {
  id: Generated<number>;
  batch_id: string;
  at: string;
  stage: string;
  outcome: 'ok' | 'error' | 'info';
  code: string | null;
  detail: string | null;
}

export interface AcksTable {
  batch_id: string;
  version: number;
  sha256: string;
  outbox_name: string;
  signed_by: string;
  encrypted_to: string;
  created_at: string;
  first_downloaded_at: string | null;
  download_count: number;
}

/** API bearer tokens: `pgw_<id>_<secret>`; only SHA-256(secret) is kept. */
export interface ApiTokensTable {
  id: string;
  partner_id: string;
  secret_hash: string;
  label: string | null;
  created_at: string;
  created_by: string;
  revoked_at: string | null;
  last_used_at: string | null;
}

/** Webhook pushes of one ack version; `delivered_at` is the delivery receipt. */
export interface AckPushesTable {
  batch_id: string;
  version: number;
  /** Host of the webhook at the first attempt (never the full URL: it may carry a partner's path secrets). */
  host: string;
  attempts: number;
  last_attempt_at: string | null;
  last_status: number | null;
  last_code: string | null;
  delivered_at: string | null;
  failed_at: string | null;
}

export interface OperatorsTable {
  name: string;
  role: 'support' | 'engineer';
  /** `scrypt$N$r$p$salt$hash` (base64url). */
  password_hash: string;
  /**
   * Raised by every password reset and by a disable; a session made under an older value
   * is refused on its next request, in every process (sessions carry the value they were made under).
   */
  session_generation: Generated<number>;
  created_at: string;
  disabled_at: string | null;
  /** TOTP secret sealed under a key derived from the master key (admin/operator-totp.ts); null = not enrolled. */
  totp_secret: string | null;
  totp_enrolled_at: string | null;
  /** The last TOTP time step a code was accepted for: that code and older ones are refused. */
  totp_last_step: number | null;
}

/** Password checked, code not yet: a short-lived challenge (never a session) for the second step. */
export interface ConsoleTotpChallengesTable {
  /** SHA-256 of the id in the challenge cookie. */
  id_hash: string;
  operator: string;
  csrf: string;
  /** The operator's session_generation when the password was checked. */
  generation: number;
  /** Wrong codes given to this challenge. */
  attempts: number;
  expires_at: string;
}

export interface ConsoleSessionsTable {
  /** SHA-256 of the session id in the cookie: a leaked ledger holds no usable session. */
  id_hash: string;
  operator: string;
  csrf: string;
  /** The operator's session_generation when the session was made. */
  generation: number;
  created_at: string;
  expires_at: string;
}

/**
 * Failed console logins per typed name, whether or not an operator has it, so that an
 * unknown name is answered exactly like a real one (locked after the same number of
 * failures). Keyed by an HMAC of the name: a password typed into the name field is not kept.
 */
export interface ConsoleLoginFailuresTable {
  name_key: string;
  failed_logins: number;
  locked_until: string | null;
  last_failed_at: string;
}

/** Subject requests (AVG): per batch, keyed hashes of its records' BSNs (see subjects.ts). */
export interface SubjectIndexTable {
  batch_id: string;
  /** 0, 1, …: a batch's entries in parts of at most 65,536, each sorted on its own. */
  part: number;
  records: number;
  /** base64 of sorted 20-byte entries: 16 bytes of the keyed BSN hash, then the record index (uint32 BE). */
  entries: string;
}

export interface AuditEventsTable {
  seq: Generated<number>;
  at: string;
  actor: string;
  action: string;
  target: string;
  detail: string | null;
  prev_hash: string;
  hash: string;
  /** How `hash` was made: 'sha256' (plain, events from before keying) or 'hmac-sha256' (keyed). */
  alg: string;
}

export interface LeasesTable {
  name: string;
  holder: string;
  expires_at: string;
}

export interface LedgerMetaTable {
  name: string;
  value: string;
}

export interface DB {
  partners: PartnersTable;
  ssh_keys: SshKeysTable;
  pgp_keys: PgpKeysTable;
  batches: BatchesTable;
  batch_digests: BatchDigestsTable;
  batch_events: BatchEventsTable;
  acks: AcksTable;
  api_tokens: ApiTokensTable;
  ack_pushes: AckPushesTable;
  operators: OperatorsTable;
  console_sessions: ConsoleSessionsTable;
  console_login_failures: ConsoleLoginFailuresTable;
  subject_index_parts: SubjectIndexTable;
  audit_events: AuditEventsTable;
  leases: LeasesTable;
  ledger_meta: LedgerMetaTable;
  handoffs: HandoffsTable;
  handoff_outcomes: HandoffOutcomesTable;
  results: ResultsTable;
  /** Webhook pushes of result versions: the same shape as `ack_pushes`. */
  result_pushes: AckPushesTable;
  service_tokens: ServiceTokensTable;
  partner_contacts: PartnerContactsTable;
  notifications: NotificationsTable;
  console_totp_challenges: ConsoleTotpChallengesTable;
  outbound_documents: OutboundDocumentsTable;
}
