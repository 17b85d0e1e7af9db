// test-pass: once
import { expect } from 'chai';
import { checkWebhookTarget, isInternalAddress, parseWebhookUrl } from '../../../gateway/core/webhook-target.js';
import { isPgwError } from '../../../gateway/core/errors.js';

function code(fn: () => unknown): string | null {
  try {
    fn();
    return null;
  } catch (err) {
    return isPgwError(err) ? err.code : 'other';
  }
}

describe('webhook targets (SSRF guard)', () => {
  it('accepts only plain https URLs', () => {
    expect(parseWebhookUrl('https://hooks.partner.example/acks?x=1').hostname).to.equal('hooks.partner.example');
    for (const u of ['http://hooks.example/a', 'ftp://x/', 'https://user:pw@hooks.example/', 'file:///etc/passwd', 'gopher://127.0.0.1:6379/_', 'not a url', `https://x/${'a'.repeat(2000)}`]) {
      expect(code(() => parseWebhookUrl(u)), u).to.equal('webhook.url_invalid');
    }
  });

  it('requires the exact host on the allow-list; names must later resolve to public addresses, listed IP literals need not', () => {
    const allow = ['hooks.partner.example', '127.0.0.1', '[::1]'];
    expect(checkWebhookTarget(new URL('https://HOOKS.partner.example:8443/a'), allow)).to.deep.equal({ checkResolved: true });
    expect(checkWebhookTarget(new URL('https://127.0.0.1:9/a'), allow)).to.deep.equal({ checkResolved: false });
    expect(checkWebhookTarget(new URL('https://[::1]/a'), allow)).to.deep.equal({ checkResolved: false });
    for (const u of ['https://evil.hooks.partner.example/', 'https://hooks.partner.example.evil.test/', 'https://127.0.0.2/', 'https://localhost/', 'https://[::2]/']) {
      expect(code(() => checkWebhookTarget(new URL(u), allow)), u).to.equal('webhook.host_not_allowed');
    }
    expect(code(() => checkWebhookTarget(new URL('https://hooks.partner.example/'), []))).to.equal('webhook.host_not_allowed');
    // Odd spellings of an address are normalised before the comparison (WHATWG URL), so they are that address.
    expect(new URL('https://2130706433/').hostname).to.equal('127.0.0.1');
    expect(code(() => checkWebhookTarget(new URL('https://0x7f000002/'), allow))).to.equal('webhook.host_not_allowed');
  });

  it('knows internal addresses (loopback, private, link-local, CGNAT, metadata, mapped, unique-local)', () => {
    for (const a of ['127.0.0.1', '10.1.2.3', '172.16.0.1', '172.31.255.255', '192.168.1.1', '169.254.169.254', '100.64.0.1', '0.0.0.0', '224.0.0.1',
      '::1', '::', 'fe80::1', 'fd00::1', '::ffff:127.0.0.1', '::ffff:10.0.0.1', 'not-an-ip']) {
      expect(isInternalAddress(a), a).to.equal(true);
    }
    for (const a of ['93.184.216.34', '8.8.8.8', '172.32.0.1', '2606:4700:4700::1111', '::ffff:8.8.8.8']) {
      expect(isInternalAddress(a), a).to.equal(false);
    }
  });

  it('judges IPv6 on its bytes: NAT64, 6to4, Teredo, IPv4-compatible, site-local and mapped forms in every notation are internal', () => {
    for (const a of [
      '64:ff9b::127.0.0.1', '64:ff9b::7f00:1', '64:ff9b::a00:1', '64:ff9b::808:808', // well-known NAT64: refused whole
      '64:ff9b:1::1', '64:ff9b:1:ffff::a00:1', // local-use NAT64 (RFC 8215)
      '2002:7f00:1::1', '2002:a00:1::1', '2002:808:808::1', // 6to4: a relay would deliver to the embedded IPv4
      '2001::1', '2001:0:4136:e378:8000:63bf:3fff:fdd2', '2001:1ff::1', // Teredo and the rest of the IETF block
      '::127.0.0.1', '::7f00:1', '::8.8.8.8', '::10.0.0.1', // IPv4-compatible (deprecated)
      'fec0::1', 'feff::1', 'fec0:0:0:1::1', // site-local
      '::ffff:7f00:1', '0:0:0:0:0:ffff:7f00:1', '0000:0000:0000:0000:0000:FFFF:7F00:0001', '::FFFF:127.0.0.1', '::ffff:a9fe:a9fe',
      '::ffff:0:127.0.0.1', '::ffff:0:7f00:1', // IPv4-translated
      'fe80::1%eth0', '::ffff:127.0.0.1%1', '3fff::1', '5f00::1', '100::1', '2001:db8:1::1', '192.88.99.1',
    ]) {
      expect(isInternalAddress(a), a).to.equal(true);
    }
    for (const a of ['2001:4860:4860::8888', '2001:200::1', '2a00:1450:4001::1', '::ffff:808:808', '::FFFF:8.8.8.8', '2003::1', '3fff:1000::1']) {
      expect(isInternalAddress(a), a).to.equal(false);
    }
  });
});
