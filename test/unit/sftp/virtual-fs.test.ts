// test-pass: once
import { expect } from 'chai';
import { normalisePath, resolvePath, longname, fileAttrs, dirAttrs, MAX_PATH_LENGTH } from '../../../gateway/sftp/virtual-fs.js';

describe('sftp/virtual-fs', () => {
  describe('normalisePath', () => {
    const cases: [string, string][] = [
      ['', '/'], ['.', '/'], ['/', '/'], ['..', '/'], ['../..', '/'], ['/../../etc/passwd', '/etc/passwd'],
      ['inbox', '/inbox'], ['inbox/', '/inbox'], ['//inbox//test/', '/inbox/test'], ['/inbox/./test/../x.pgp', '/inbox/x.pgp'],
      ['/inbox/test/../../outbox', '/outbox'], ['/inbox/..;/keys', '/inbox/..;/keys'], ['/inbox/%2e%2e/keys', '/inbox/%2e%2e/keys'],
    ];
    for (const [input, want] of cases) {
      it(`${JSON.stringify(input)} → ${want}`, () => expect(normalisePath(input)).to.equal(want));
    }
    it('refuses NUL, CR/LF, backslash, non-ASCII and over-long paths', () => {
      for (const bad of ['/inbox/a\u0000', '/inbox/a\nb', '/inbox/a\rb', '..\\..\\x', '/inbox/\uff0e\uff0e', '/inbox/é', '/inbox/\u202e', 'a'.repeat(MAX_PATH_LENGTH + 1)]) {
        expect(normalisePath(bad), JSON.stringify(bad)).to.equal(null);
      }
      expect(normalisePath('a'.repeat(MAX_PATH_LENGTH))).to.equal(`/${'a'.repeat(MAX_PATH_LENGTH)}`);
    });
  });

  describe('resolvePath', () => {
    it('maps the virtual tree', () => {
      expect(resolvePath('/')).to.deep.equal({ kind: 'root' });
      expect(resolvePath('/inbox')).to.deep.equal({ kind: 'inbox-dir', lane: 'live' });
      expect(resolvePath('/inbox/test')).to.deep.equal({ kind: 'inbox-dir', lane: 'test' });
      expect(resolvePath('/inbox/x.pgp')).to.deep.equal({ kind: 'inbox-entry', lane: 'live', name: 'x.pgp' });
      expect(resolvePath('/inbox/test/x.pgp')).to.deep.equal({ kind: 'inbox-entry', lane: 'test', name: 'x.pgp' });
      expect(resolvePath('/outbox')).to.deep.equal({ kind: 'outbox-dir', lane: 'live' });
      expect(resolvePath('/outbox/test/a.pgp.ack.pgp')).to.deep.equal({ kind: 'outbox-entry', lane: 'test', name: 'a.pgp.ack.pgp' });
      expect(resolvePath('/keys')).to.deep.equal({ kind: 'keys-dir' });
      expect(resolvePath('/keys/gateway.asc')).to.deep.equal({ kind: 'gateway-key' });
    });
    it('everything else is nothing (no deeper dirs, no case variants, no other roots)', () => {
      for (const p of ['/x', '/INBOX', '/Inbox/x.pgp', '/inbox/a/b.pgp', '/inbox/test/a/b.pgp', '/keys/other.asc', '/keys/gateway.asc/x', '/etc/passwd']) {
        expect(resolvePath(p), p).to.deep.equal({ kind: 'none' });
      }
    });
  });

  it('longname looks like ls -l', () => {
    const t = Date.UTC(2026, 0, 5, 9, 7) / 1000;
    const line = longname('x.pgp', { ...fileAttrs(1234, 0), mtime: t, atime: t }, 'acme', t * 1000);
    expect(line).to.equal('-rw-------    1 acme     acme         1234 Jan  5 09:07 x.pgp');
    expect(longname('inbox', dirAttrs(true), 'acme', t * 1000)).to.match(/^drwx------ .* 1970 inbox$/);
  });
});
