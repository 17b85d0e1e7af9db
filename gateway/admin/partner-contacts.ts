/**
 * A partner's contact e-mail addresses, to which notifications are mailed (README "Notifications").
 * The audit log records that a contact was added or removed and its domain, not the
 * address: it names a person at the partner.
 */
import type { Ledger } from '../core/ledger/index.js';
import { PgwError } from '../core/errors.js';

/** A plain address (no display name): what an operator types and SMTP takes as a recipient. */
const ADDRESS = /^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$/;

export function parseContactEmail(text: string): string {
  const addr = text.trim();
  if (addr.length > 254 || !ADDRESS.test(addr)) throw new PgwError('partner.contact_invalid');
  // The domain is case-insensitive; the local part is kept as given.
  const at = addr.lastIndexOf('@');
  return `${addr.slice(0, at)}@${addr.slice(at + 1).toLowerCase()}`;
}

export interface ContactChanges {
  add?: string[];
  remove?: string[];
  /** Remove every contact first. */
  clear?: boolean;
}

/** Apply the changes; returns the partner's contacts afterwards. */
export async function changePartnerContacts(ledger: Ledger, partnerId: string, changes: ContactChanges, actor: string): Promise<string[]> {
  await ledger.partners.require(partnerId);
  const add = (changes.add ?? []).map(parseContactEmail);
  const remove = (changes.remove ?? []).map(parseContactEmail);
  if (changes.clear) remove.push(...(await ledger.notifications.contacts(partnerId)));
  for (const email of remove) {
    if (await ledger.notifications.removeContact(partnerId, email)) {
      await ledger.audit.record(actor, 'partner.contact_removed', partnerId, { domain: email.slice(email.lastIndexOf('@') + 1) });
    }
  }
  for (const email of add) {
    if (await ledger.notifications.addContact(partnerId, email)) {
      await ledger.audit.record(actor, 'partner.contact_added', partnerId, { domain: email.slice(email.lastIndexOf('@') + 1) });
    }
  }
  return ledger.notifications.contacts(partnerId);
}
