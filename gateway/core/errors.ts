/**
 * The one registry of stable error codes.
 *
 * Glossary:
 * - **code**: a dotted, lower-case identifier (`signature.unknown_key`) that partners,
 *   tests and operators rely on. Codes never change meaning once released.
 * - **scope**: who the code is for. `batch` codes end up in acks (the whole batch),
 *   `record` codes in an ack's per-record `errors`, `upload` codes are answered on the
 *   channel while uploading, `api` codes are HTTPS API answers, `delivery` codes describe
 *   a webhook push of an ack, `console` codes answer the support console, `operator`
 *   codes come back from the CLI / config.
 * - **retryable**: whether a worker may retry the stage; permanent failures
 *   turn into a signed `rejected` ack at once.
 *
 * Messages in this file are generic and never carry input values. A thrown
 * {@link PgwError} may add a specific message, which must follow the same rule.
 */

export type ErrorScope = 'batch' | 'record' | 'upload' | 'api' | 'delivery' | 'console' | 'operator';

interface CodeInfo {
  scope: ErrorScope;
  /** Default text, safe to show to a partner (no personal data, no internals). */
  message: string;
  retryable?: boolean;
}

export const ERROR_CODES = {
  // --- upload (channel) ---
  'upload.name_invalid': { scope: 'upload', message: 'file name not allowed: use letters, digits, ".", "-", "_" and end in .pgp, .gpg or .asc' },
  'upload.permission_denied': { scope: 'upload', message: 'not allowed here: uploads go to /inbox or /inbox/test only' },
  'upload.incomplete': { scope: 'upload', message: 'the upload did not complete; nothing was kept' },
  'upload.storage_failed': { scope: 'upload', message: 'the gateway could not store the upload durably; please retry', retryable: true },
  'limits.upload_size': { scope: 'upload', message: 'the file exceeds the maximum upload size' },
  'limits.sparse_write': { scope: 'upload', message: 'write offset beyond the maximum upload size' },
  'limits.open_files': { scope: 'upload', message: 'too many open files on this connection' },
  'partner.disabled': { scope: 'upload', message: 'this partner account is disabled' },

  // --- HTTPS partner API ---
  'auth.unauthorized': { scope: 'api', message: 'missing, unknown or revoked bearer token' },
  'auth.client_certificate': { scope: 'api', message: 'this partner requires its registered TLS client certificate' },
  'http.rate_limited': { scope: 'api', message: 'too many requests; retry after the time in Retry-After' },
  'http.unsupported_media_type': { scope: 'api', message: 'send the OpenPGP file as application/octet-stream (or application/pgp-encrypted), without Content-Encoding' },
  'http.not_found': { scope: 'api', message: 'no such resource' },
  'http.method_not_allowed': { scope: 'api', message: 'method not allowed on this resource' },
  'http.bad_request': { scope: 'api', message: 'the request is malformed' },
  'http.timeout': { scope: 'api', message: 'the request was not received in time' },
  'ack.not_ready': { scope: 'api', message: 'the acknowledgement is not ready yet; retry later' },
  'internal.error': { scope: 'api', message: 'internal error; support has been notified', retryable: true },

  // --- internal API (Babybalance's own systems: handoff, outcomes) and results ---
  'auth.scope': { scope: 'api', message: 'the service token does not have the scope this route needs' },
  'handoff.not_found': { scope: 'api', message: 'no such handoff: an unknown batch, a test-lane batch or one without accepted records' },
  'handoff.withdrawn': { scope: 'api', message: 'the batch is being reprocessed; its records will be listed again under a new version' },
  'handoff.superseded': { scope: 'api', message: 'the outcome names a version of the records that is no longer current; fetch the current one' },
  'handoff.not_taken': { scope: 'api', message: 'fetch the records of this version before reporting their outcome' },
  'handoff.conflict': { scope: 'api', message: 'another outcome was already recorded for these records; the first one stands' },
  'handoff.released': { scope: 'api', message: 'the records were deleted after their outcome was recorded' },
  'handoff.overdue': { scope: 'operator', message: 'accepted records were not confirmed by the account service within PGW_HANDOFF_OVERDUE_HOURS' },
  'outcome.invalid': { scope: 'api', message: 'the outcome does not match its schema (see /internal/v1/openapi.json)' },
  'outcome.unknown_value': { scope: 'api', message: 'an outcome must be created, exists or failed' },
  'outcome.unknown_record': { scope: 'api', message: 'the outcome names a record that is not an accepted record of this batch' },
  'outcome.duplicate_record': { scope: 'api', message: 'the outcome names a record more than once' },
  'outcome.missing_records': { scope: 'api', message: 'the outcome must name every accepted record exactly once; some are missing' },
  'result.not_ready': { scope: 'api', message: 'the result is not ready yet: the account service has not reported on the records' },
  'document.partner_unknown': { scope: 'api', message: 'no such partner' },
  'document.partner_disabled': { scope: 'api', message: 'the partner is disabled: nothing is sent to it' },
  'document.no_partner_key': { scope: 'api', message: 'the partner has no active encryption key: the document cannot be encrypted to it' },
  'document.name_invalid': { scope: 'api', message: 'document names are 1-196 characters (letters, digits, ".", "-", "_"), not starting with a dot or dash, without ".."; they may not end in .ack or .result' },
  'document.name_taken': { scope: 'api', message: 'the partner has an open document of this name with other content; choose another name' },
  'document.not_found': { scope: 'api', message: 'no such document' },
  'limits.outbound_size': { scope: 'api', message: 'the document exceeds PGW_MAX_OUTBOUND_BYTES' },

  // --- webhook delivery of acks ---
  'webhook.not_configured': { scope: 'delivery', message: 'the partner has no webhook' },
  'webhook.url_invalid': { scope: 'delivery', message: 'the webhook must be an https:// URL without credentials' },
  'webhook.host_not_allowed': { scope: 'delivery', message: 'the webhook host is not on the operator\'s allow-list' },
  'webhook.address_not_allowed': { scope: 'delivery', message: 'the webhook host resolves to a private, loopback or otherwise internal address' },
  'webhook.redirect': { scope: 'delivery', message: 'the webhook answered with a redirect; redirects are not followed' },
  'webhook.http_status': { scope: 'delivery', message: 'the webhook answered with a non-2xx status', retryable: true },
  'webhook.network': { scope: 'delivery', message: 'the webhook could not be reached (connection, TLS or timeout)', retryable: true },
  'webhook.gave_up': { scope: 'delivery', message: 'the ack could not be pushed after the configured number of attempts' },
  'notify.smtp_unavailable': { scope: 'delivery', message: 'the SMTP server could not be reached or did not answer; the notification is mailed again later', retryable: true },
  'notify.tls_required': { scope: 'delivery', message: 'the SMTP server offered no STARTTLS (or a certificate that is not trusted) and PGW_SMTP_REQUIRE_TLS is true: nothing was sent', retryable: true },
  'notify.refused': { scope: 'delivery', message: 'the SMTP server refused the mail (sender, recipients or credentials)' },
  'notify.no_contacts': { scope: 'delivery', message: 'the partner has no contact e-mail address: the notification was not sent' },

  // --- support console ---
  'console.login_failed': { scope: 'console', message: 'unknown operator or wrong password' },
  'console.locked': { scope: 'console', message: 'too many failed logins: this account is locked for a while' },
  'console.login_required': { scope: 'console', message: 'log in first' },
  'console.forbidden': { scope: 'console', message: 'this action needs the engineer role' },
  'console.csrf': { scope: 'console', message: 'the form is stale or did not come from the console; reload and try again' },
  'console.totp_required': { scope: 'console', message: 'this account needs a second factor first: an engineer enrols it with `pgw operator totp <name>`' },
  'console.totp_failed': { scope: 'console', message: 'wrong or expired code' },
  'console.totp_replayed': { scope: 'console', message: 'this code was already used: wait for the next one' },

  // --- batch (before validation) ---
  'batch.duplicate': { scope: 'batch', message: 'the same file was already received as another batch' },
  'pgp.malformed': { scope: 'batch', message: 'the file is not a well-formed OpenPGP message' },
  'pgp.not_encrypted': { scope: 'batch', message: 'the message is not encrypted to the gateway key' },
  'pgp.cleartext_signed': { scope: 'batch', message: 'cleartext-signed messages are not accepted; sign and encrypt the file' },
  'pgp.integrity': { scope: 'batch', message: 'the message failed its integrity check (modified, truncated or corrupted in transit)' },
  'pgp.no_integrity_protection': { scope: 'batch', message: 'the message is not integrity protected (SEIPD/AEAD required)' },
  'pgp.weak_algorithm': { scope: 'batch', message: 'the message uses an algorithm the gateway does not accept' },
  'decrypt.no_key': { scope: 'batch', message: 'the message is not encrypted to any current gateway key' },
  'signature.missing': { scope: 'batch', message: 'the message is not signed; sign it with your registered key' },
  'signature.unknown_key': { scope: 'batch', message: 'the message is signed by a key that is not registered for this partner' },
  'signature.invalid': { scope: 'batch', message: 'a signature on the message does not verify' },
  'signature.future': { scope: 'batch', message: 'the signature time lies in the future' },
  'signature.too_old': { scope: 'batch', message: 'the signature is older than the accepted window (possible replay)' },
  'signature.weak_hash': { scope: 'batch', message: 'the signature uses a hash algorithm the gateway does not accept' },
  'limits.decompressed_size': { scope: 'batch', message: 'the decrypted content exceeds the maximum size' },
  'limits.decompression_ratio': { scope: 'batch', message: 'the content expands too much when decompressed (possible decompression bomb)' },
  'payload.encoding': { scope: 'batch', message: 'the content is not valid UTF-8' },
  'payload.malformed': { scope: 'batch', message: 'the content is not valid JSON or CSV' },
  'payload.duplicate_keys': { scope: 'batch', message: 'the JSON content has duplicate object keys' },
  'limits.json_depth': { scope: 'batch', message: 'the JSON content is nested too deeply' },
  'limits.records': { scope: 'batch', message: 'the batch has more records than allowed' },
  'schema.unknown': { scope: 'batch', message: 'the batch names no schema, or one the gateway does not know' },
  'schema.batch_invalid': { scope: 'batch', message: 'the batch envelope does not match the schema' },
  'batch.empty': { scope: 'batch', message: 'the batch holds no records' },
  'records.none_accepted': { scope: 'batch', message: 'no record of the batch was accepted; see the per-record errors' },
  'internal.processing_failed': { scope: 'batch', message: 'the gateway could not process the batch; support has been notified', retryable: true },
  'batch.expired': { scope: 'batch', message: 'the batch did not finish (no ack was made) within the retention period; its data was deleted' },

  // --- record ---
  'field.required': { scope: 'record', message: 'a required field is missing' },
  'field.unknown': { scope: 'record', message: 'the field is not part of the schema' },
  'field.type': { scope: 'record', message: 'the field has the wrong type' },
  'field.too_long': { scope: 'record', message: 'the field is too long' },
  'field.empty': { scope: 'record', message: 'the field is empty' },
  'record.type': { scope: 'record', message: 'the record is not an object' },
  'limits.record_size': { scope: 'record', message: 'the record is larger than the maximum record size; it was not read' },
  'bsn.format': { scope: 'record', message: 'the BSN must be 9 digits' },
  'bsn.checksum': { scope: 'record', message: 'the BSN fails the 11-test' },
  'bsn.placeholder': { scope: 'record', message: 'the BSN is the placeholder 999999999 (identity not established)' },
  'subject.erased': { scope: 'record', message: 'the record was erased at the request of the person it names (AVG art. 17); not an error in the upload' },
  'email.format': { scope: 'record', message: 'the e-mail address is not valid' },
  'postcode.format': { scope: 'record', message: 'the postcode is not a valid Dutch postcode (1234 AB)' },
  'date.format': { scope: 'record', message: 'the date is not a valid calendar date (YYYY-MM-DD)' },
  'birthDate.implausible': { scope: 'record', message: 'the birth date is not plausible (in the future or too long ago)' },
  'dueDate.out_of_window': { scope: 'record', message: 'the due date is outside the plausible window around the batch date' },
  'insurer.uzovi': { scope: 'record', message: 'the insurer must be a 4-digit UZOVI code' },
  'careProvider.agb': { scope: 'record', message: 'the care provider must be an 8-digit AGB code' },

  // --- keys: partners' signing keys, their self-service submission, the gateway's keys and passphrase ---
  'key.revoked': { scope: 'batch', message: 'the signing key is revoked' },
  'key.expired': { scope: 'batch', message: 'the signing key was expired at signature time or is expired now' },
  'key.not_yet_active': { scope: 'batch', message: 'the signing key was not yet active at signature time' },
  'key.submission_unsigned': { scope: 'upload', message: 'a new key must come with a detached signature over it (gpg --detach-sign) by your current key' },
  'key.submission_bad_signature': { scope: 'upload', message: 'the signature over the new key does not verify against a currently active key of yours' },
  'key.submission_duplicate': { scope: 'upload', message: 'this key is already registered' },
  'key.submission_too_large': { scope: 'upload', message: 'the key or signature file is too large' },
  'key.revocation_invalid': { scope: 'upload', message: 'not a valid revocation certificate for one of your registered keys' },
  'key.not_found': { scope: 'operator', message: 'no such key' },
  'key.rotation_invalid': { scope: 'operator', message: 'the rotation times are not valid (activation must not lie in the past; overlap must be positive)' },
  'key.invalid': { scope: 'operator', message: 'the key could not be read or is not acceptable' },
  'key.weak': { scope: 'operator', message: 'the key uses an algorithm or size the gateway does not accept' },
  'key.exists': { scope: 'operator', message: 'the key is already registered' },
  'key.passphrase_missing': { scope: 'operator', message: 'set PGW_KEY_PASSPHRASE or PGW_KEY_PASSPHRASE_FILE' },
  'key.passphrase_wrong': { scope: 'operator', message: 'the key passphrase does not unlock the stored keys' },

  // --- audit chain ---
  'audit.broken': { scope: 'operator', message: 'the audit hash chain is broken' },
  'audit.key_missing': { scope: 'operator', message: 'recording or verifying audit events needs the audit chain key: set PGW_KEY_PASSPHRASE (or PGW_DATA_KEY) as for pgw start' },
  'audit.key_mismatch': { scope: 'operator', message: 'the master key (PGW_DATA_KEY, or the one derived from the passphrase) is not the one this ledger\'s audit chain is keyed with' },

  // --- operator ---
  'config.invalid': { scope: 'operator', message: 'the configuration is invalid' },
  'partner.not_found': { scope: 'operator', message: 'no such partner' },
  'partner.exists': { scope: 'operator', message: 'the partner already exists' },
  'partner.id_invalid': { scope: 'operator', message: 'partner ids are 2-40 characters: lower-case letters, digits and "-"' },
  'partner.contact_invalid': { scope: 'operator', message: 'a contact e-mail address looks like name@example.org (at most 254 characters)' },
  'batch.not_found': { scope: 'operator', message: 'no such batch' },
  'subject.request_not_found': { scope: 'operator', message: 'no such subject request: open one with pgw subject request open' },
  'subject.request_closed': { scope: 'operator', message: 'the subject request is closed: an action needs an open request' },
  'subject.request_kind': { scope: 'operator', message: 'the subject request is of another kind (access: find and export; correction: correct; erasure: erase)' },
  'subject.bsn_missing': { scope: 'operator', message: 'give the BSN on stdin with --bsn - (9 digits)' },
  'subject.correction_invalid': { scope: 'operator', message: 'the correction would store what an upload is refused for (schema, format or plausibility); nothing was changed' },
  'subject.batch_in_progress': { scope: 'operator', message: 'a batch that holds the person is still being processed (received, decrypting or validating); nothing was changed: run the command again once its ack is out' },
  'token.not_found': { scope: 'operator', message: 'no such API token for this partner' },
  'service.invalid': { scope: 'operator', message: 'service names are 2-40 characters (a-z, 0-9, "-"); scopes are handoff, outbound and subjects' },
  'service.token_not_found': { scope: 'operator', message: 'no such service token' },
  'operator.invalid': { scope: 'operator', message: 'operator names are 2-40 characters (a-z, 0-9, ".", "-"); roles support or engineer; passwords at least 12 characters' },
  'operator.not_found': { scope: 'operator', message: 'no such operator' },
  'batch.not_reprocessable': { scope: 'operator', message: 'the batch cannot run again: its received file is no longer stored' },
  'batch.subject_action_running': { scope: 'operator', message: 'a subject erasure or correction is rewriting the batch; nothing was changed: reprocess it once that is done (an interrupted one holds the batch 15 minutes, or until it is run again)' },
  'schedule.invalid': { scope: 'operator', message: 'expected schedule looks like "mon-fri 10:00" or "mon,wed,fri 09:30"' },
  'ack.no_partner_key': { scope: 'operator', message: 'the partner has no usable encryption key for acks' },
  'gateway.not_initialised': { scope: 'operator', message: 'the data dir is not initialised: run `pgw init`' },
  'ledger.sqlite_shared': { scope: 'operator', message: 'the SQLite ledger lies on a network or cluster file system, where its locking is not safe: use PostgreSQL (PGW_DATABASE_URL=postgres://…) for several hosts' },
  'ledger.data_dir_mismatch': { scope: 'operator', message: 'this data dir belongs to another ledger: every process of one installation must use the same PGW_DATABASE_URL' },
  'redis.policy': { scope: 'operator', message: 'Redis must use maxmemory-policy noeviction' },
  'redis.unreachable': { scope: 'operator', message: 'Redis does not answer at the configured address (PGW_REDIS_URL)' },
  'ledger.unreachable': { scope: 'operator', message: 'the PostgreSQL ledger does not answer at the configured address (PGW_DATABASE_URL)' },
  'fault.refused': { scope: 'operator', message: 'fault injection is refused in production' },
  'backup.target_invalid': { scope: 'operator', message: 'write a backup into a new or empty directory outside the data dir' },
  'backup.invalid': { scope: 'operator', message: 'the backup is incomplete or does not match its manifest (pgw backup verify names each file)' },
  'backup.key_mismatch': { scope: 'operator', message: 'the backup\'s manifest does not match these secrets: it was changed, or PGW_KEY_PASSPHRASE / PGW_DATA_KEY are not those of the installation it came from' },
  'backup.restore_not_empty': { scope: 'operator', message: 'restore fills an empty data dir and an empty database; the target already holds data' },
  'backup.dialect_mismatch': { scope: 'operator', message: 'the backup holds a ledger of the other kind (SQLite or PostgreSQL) than PGW_DATABASE_URL names' },
  'backup.tool_failed': { scope: 'operator', message: 'pg_dump or pg_restore failed or is not installed (use the client tools of the server\'s major version)' },
} as const satisfies Record<string, CodeInfo>;

export type ErrorCode = keyof typeof ERROR_CODES;

/** Every failure the gateway decides on carries one of the registered codes. */
export class PgwError extends Error {
  readonly code: ErrorCode;
  /** Safe, structured facts (fingerprints, limits, batch ids) — never personal data. */
  readonly details: Record<string, unknown>;

  constructor(code: ErrorCode, message?: string, details: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super(message ?? ERROR_CODES[code].message, options);
    this.name = 'PgwError';
    this.code = code;
    this.details = details;
  }

  get scope(): ErrorScope {
    return ERROR_CODES[this.code].scope;
  }

  get retryable(): boolean {
    return (ERROR_CODES[this.code] as CodeInfo).retryable === true;
  }
}

export function isPgwError(err: unknown, code?: ErrorCode): err is PgwError {
  return err instanceof PgwError && (code === undefined || err.code === code);
}

export function errorInfo(code: ErrorCode): CodeInfo {
  return ERROR_CODES[code];
}
