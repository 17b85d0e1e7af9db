/**
 * Outbound documents (README "Sending documents to partners"): what Babybalance sends a partner (declarations,
 * reports), signed by the gateway and encrypted to the partner as they stream in.
 *
 * Glossary:
 * - **identity**: HMAC-SHA256 of the plaintext under a key derived from the master key. The
 *   encrypted file differs on every attempt, so this keyed digest is what recognises a
 *   caller's retry (same name, same bytes); it is keyed so that the ledger cannot confirm a
 *   guess of a document's content.
 * - **closed**: withdrawn from the outbox (the key it was encrypted to was revoked before
 *   pickup: `key_revoked`) or removed by retention (`expired`). A closed document frees its
 *   name; the row stays as the record of what was sent.
 */
export interface OutboundDocumentsTable {
  /** `d-YYYYMMDD-<12 chars>`. */
  id: string;
  partner_id: string;
  /** The name the sender gave (validated like an upload name); the outbox entry is `<name>.pgp`. */
  name: string;
  outbox_name: string;
  identity: string;
  plain_bytes: number;
  /** SHA-256 of the encrypted file as published. */
  sha256: string;
  signed_by: string;
  encrypted_to: string;
  sent_by: string;
  created_at: string;
  /** Linked into the outbox (null: queued, the link is still to be made). */
  published_at: string | null;
  first_downloaded_at: string | null;
  downloaded_via: string | null;
  download_count: number;
  pushed_at: string | null;
  push_attempts: number;
  push_last_code: string | null;
  push_failed_at: string | null;
  closed_at: string | null;
  closed_reason: string | null;
}
