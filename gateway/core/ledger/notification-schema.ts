/**
 * Ledger tables of partner e-mail notifications (README "Notifications") and of the console's second
 * factor.
 *
 * Glossary:
 * - **contact**: an e-mail address of a partner's IT, set by the operator (several allowed).
 * - **notification**: one event worth telling a partner (a batch rejected, an ack waiting
 *   past overdue, a batch late, a key expiring), keyed by what it is about, so it is
 *   recorded once however many processes find it. Its `facts` are codes, file names,
 *   fingerprints and times only — never record content.
 * - **state**: `pending` (to be mailed from `next_attempt_at`) → `sending` (claimed by one
 *   process until `claimed_until`) → `sent`; back to `pending` with a later
 *   `next_attempt_at` when the SMTP server could not take it; `failed` when out of attempts
 *   or refused for good; `skipped` when the partner had no contact address at the time.
 */

export type NotificationState = 'pending' | 'sending' | 'sent' | 'failed' | 'skipped';

export interface PartnerContactsTable {
  partner_id: string;
  email: string;
  created_at: string;
}

export interface NotificationsTable {
  /** What the event is about, e.g. `batch.rejected:b-…:v1` or `key.expiring:<fingerprint>:14`. */
  event_key: string;
  partner_id: string;
  /** The rule that found it (`batch.rejected`, `ack.overdue`, …). */
  kind: string;
  /** JSON of the event's facts (codes, file names, fingerprints, times). */
  facts: string;
  /** When the event happened (or became due). */
  occurred_at: string;
  created_at: string;
  state: NotificationState;
  attempts: number;
  next_attempt_at: string;
  claimed_by: string | null;
  claimed_until: string | null;
  /** Error code of the last failed attempt. */
  last_code: string | null;
  sent_at: string | null;
  /** Message-ID of the mail that carried it (one digest carries several events). */
  message_id: string | null;
}
