// test-pass: once
import { expect } from 'chai';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { createDevCertificate, DEV_CERT_CN } from '../../../keys/dev-tls-cert.js';

describe('keys/dev-tls-cert', () => {
  it('makes valid certificates every time (random serials encode as minimal DER)', () => {
    // A serial starting 0x00 0x0…0x7f once made 1 in 256 certificates unreadable.
    for (let i = 0; i < 600; i++) {
      const c = createDevCertificate('a passphrase', 30);
      const x = new X509Certificate(c.certPem);
      expect(x.subject).to.equal(`CN=${DEV_CERT_CN}`);
    }
  });

  it('covers localhost and loopback, and keeps the key encrypted', () => {
    const c = createDevCertificate('a passphrase');
    const x = new X509Certificate(c.certPem);
    expect(x.subjectAltName).to.include('DNS:localhost').and.include('IP Address:127.0.0.1');
    expect(c.keyPem).to.match(/^-----BEGIN ENCRYPTED PRIVATE KEY-----/);
    expect(() => createPrivateKey({ key: c.keyPem })).to.throw();
    expect(x.checkPrivateKey(createPrivateKey({ key: c.keyPem, passphrase: 'a passphrase' }))).to.equal(true);
  });
});
