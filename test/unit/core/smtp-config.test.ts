// test-pass: once
/**
 * The notification settings (PGW_SMTP_*): plaintext SMTP only to a relay on this host, a
 * sender required, true/false read strictly, and the URL's password never logged.
 */
import { expect } from 'chai';
import { loadConfig, redactedConfig } from '../../../gateway/core/config.js';
import { PgwError } from '../../../gateway/core/errors.js';

function problems(env: Record<string, string>): string[] {
  try {
    loadConfig({ env });
  } catch (err) {
    expect(err).to.be.instanceOf(PgwError);
    expect((err as PgwError).code).to.equal('config.invalid');
    return (err as PgwError).details.problems as string[];
  }
  return [];
}

describe('config: notification settings', () => {
  const base = { PGW_SMTP_URL: 'smtp://mail.example.org:587', PGW_SMTP_FROM: 'gateway@example.org' };

  it('defaults to no mail, STARTTLS required', () => {
    const n = loadConfig({ env: {} }).notifications;
    expect(n).to.include({ smtpUrl: null, from: null, requireTls: true });
    expect(loadConfig({ env: base }).notifications).to.include({ smtpUrl: base.PGW_SMTP_URL, requireTls: true });
  });

  it('refuses PGW_SMTP_REQUIRE_TLS=false unless the server is on this host', () => {
    const off = { PGW_SMTP_REQUIRE_TLS: 'false' };
    expect(problems({ ...base, ...off }).join('\n')).to.include('PGW_SMTP_REQUIRE_TLS').and.include('mail.example.org');
    for (const host of ['127.0.0.1', 'localhost', '[::1]', '127.0.0.25']) {
      expect(problems({ ...base, ...off, PGW_SMTP_URL: `smtp://${host}:25` }), host).to.deep.equal([]);
      expect(loadConfig({ env: { ...base, ...off, PGW_SMTP_URL: `smtp://${host}:25` } }).notifications.requireTls).to.equal(false);
    }
    expect(problems({ ...base, PGW_SMTP_REQUIRE_TLS: 'maybe' }).join('\n')).to.include('PGW_SMTP_REQUIRE_TLS: expected true or false');
  });

  it('needs a sender, an smtp:// or smtps:// URL without a path', () => {
    expect(problems({ PGW_SMTP_URL: base.PGW_SMTP_URL }).join('\n')).to.include('PGW_SMTP_FROM: required');
    expect(problems({ ...base, PGW_SMTP_URL: 'http://mail.example.org' }).join('\n')).to.include('PGW_SMTP_URL');
    expect(problems({ ...base, PGW_SMTP_URL: 'smtp://mail.example.org/x' }).join('\n')).to.include('no path');
  });

  it('never logs the SMTP password', () => {
    const c = loadConfig({ env: { ...base, PGW_SMTP_URL: 'smtps://relay:s3cret-Pa55@mail.example.org:465' } });
    const shown = JSON.stringify(redactedConfig(c));
    expect(shown).to.not.include('s3cret-Pa55');
    expect(shown).to.include('mail.example.org');
  });
});
