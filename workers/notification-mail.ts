/**
 * The one mail action of the notification engine: a digest of a partner's due events, one
 * message to all of the partner's contacts, over SMTP with nodemailer. STARTTLS is required
 * on smtp:// unless the operator allowed plaintext to a relay on this host (config.ts
 * refuses it for any other host); smtps:// is TLS from the start. Failures come back as
 * registered codes, so the engine knows whether trying later can help.
 */
import { readFileSync } from 'node:fs';
import tls from 'node:tls';
import nodemailer, { type Mail as Transporter } from 'nodemailer';
import type { Config } from '../gateway/core/config.js';
import { PgwError, type ErrorCode } from '../gateway/core/errors.js';
import type { NotificationRow } from '../gateway/core/ledger/index.js';
import { ruleFor } from './notification-rules.js';

export interface Mail {
  to: string[];
  subject: string;
  text: string;
}

export interface Mailer {
  /** Sends one mail; resolves to its Message-ID, or throws a PgwError (`notify.*`). */
  send(mail: Mail): Promise<string>;
  close(): void;
}

/** The subject and text of one mail carrying `rows` (one partner's events, oldest first). */
export function composeDigest(partnerId: string, rows: NotificationRow[]): Omit<Mail, 'to'> {
  const items = rows.map((r) => {
    const facts = JSON.parse(r.facts) as Record<string, string | number | null>;
    const rule = ruleFor(r.kind);
    return { title: rule ? rule.title(facts) : r.kind, text: rule ? rule.text(facts) : r.kind };
  });
  const subject = items.length === 1
    ? `[partner gateway] ${partnerId}: ${items[0]!.title}`
    : `[partner gateway] ${partnerId}: ${items.length} notices`;
  const text = [
    `Partner gateway notice for ${partnerId}.`,
    '',
    ...items.flatMap((it, i) => [items.length === 1 ? it.text : `${i + 1}. ${it.text}`, '']),
    'This message names files, codes, keys and times only; it carries no record content.',
    'Error codes are listed in the gateway documentation you received when you were connected.',
    '',
  ].join('\n');
  return { subject, text };
}

/** A nodemailer error (or any other) as one of our codes. */
export function mailErrorCode(err: unknown): ErrorCode {
  const e = err as { code?: unknown; responseCode?: unknown; message?: unknown };
  const code = typeof e.code === 'string' ? e.code : '';
  const status = typeof e.responseCode === 'number' ? e.responseCode : 0;
  if (code === 'ETLS' || /certificate|self[- ]signed|STARTTLS/i.test(String(e.message ?? ''))) return 'notify.tls_required';
  if (status >= 500 && status < 600) return 'notify.refused';
  if (code === 'EAUTH' || code === 'ENOAUTH' || code === 'EENVELOPE') return status >= 400 && status < 500 ? 'notify.smtp_unavailable' : 'notify.refused';
  return 'notify.smtp_unavailable';
}

export class SmtpMailer implements Mailer {
  private readonly transport: Transporter;

  constructor(private readonly settings: Config['notifications']) {
    if (!settings.smtpUrl || !settings.from) throw new PgwError('config.invalid', 'PGW_SMTP_URL and PGW_SMTP_FROM are needed to send notifications');
    const u = new URL(settings.smtpUrl);
    const secure = u.protocol === 'smtps:';
    const ca = settings.caFile ? readFileSync(settings.caFile, 'utf8') : null;
    this.transport = nodemailer.createTransport({
      host: u.hostname.replace(/^\[|\]$/g, ''),
      port: Number(u.port) || (secure ? 465 : 587),
      secure,
      // Plaintext only where config.ts allowed it (a relay on this host): no STARTTLS at all
      // then, rather than one that fails on the relay's self-made certificate.
      requireTLS: !secure && settings.requireTls,
      ignoreTLS: !secure && !settings.requireTls,
      ...(u.username ? { auth: { user: decodeURIComponent(u.username), pass: decodeURIComponent(u.password) } } : {}),
      // An extra CA is trusted beside the system's, not instead of it.
      tls: { minVersion: 'TLSv1.2', ...(ca ? { ca: [...tls.rootCertificates, ca] } : {}) },
      connectionTimeout: 15_000, greetingTimeout: 15_000, socketTimeout: 30_000,
      disableFileAccess: true, disableUrlAccess: true,
    });
  }

  async send(mail: Mail): Promise<string> {
    try {
      const info = await this.transport.sendMail({ from: this.settings.from!, to: mail.to, subject: mail.subject, text: mail.text });
      return String(info.messageId ?? '');
    } catch (err) {
      throw new PgwError(mailErrorCode(err), undefined, {}, { cause: err });
    }
  }

  close(): void {
    this.transport.close();
  }
}
