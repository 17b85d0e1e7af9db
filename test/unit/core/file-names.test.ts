// test-pass: once
import { expect } from 'chai';
import { classifyUploadName, ackFileName, isAckFileName } from '../../../gateway/core/file-names.js';
import { PgwError } from '../../../gateway/core/errors.js';

describe('upload file names', () => {
  it('accepts ordinary final and temp names', () => {
    expect(classifyUploadName('export-2026-11-25.json.pgp')).to.equal('final');
    expect(classifyUploadName('X_1.csv.GPG')).to.equal('final');
    expect(classifyUploadName('a.asc')).to.equal('final');
    expect(classifyUploadName('a.json.pgp.filepart')).to.equal('temp');
    expect(classifyUploadName('.a.json.pgp')).to.equal('temp');
    expect(classifyUploadName('.a.json.pgp.Xy12Ab')).to.equal('temp');
    expect(isAckFileName('a.json.pgp.ack.pgp')).to.equal(true);
    expect(isAckFileName(ackFileName('a.json.pgp', 'b-20261125-abcdefghijkm'))).to.equal(true);
    expect(isAckFileName('a.json.ack.pgp')).to.equal(false);
    expect(isAckFileName('.a.json.pgp.ack.pgp')).to.equal(false);
    expect(ackFileName('a.json.pgp')).to.equal('a.json.pgp.ack.pgp');
  });

  it('refuses traversal, odd characters and wrong extensions', () => {
    for (const bad of ['../x.pgp', '..\\x.pgp', 'a/b.pgp', 'x..pgp', '.', '..', '', 'x.pgp ', 'x.pgp.', 'ｘ.pgp', 'x\u0000.pgp',
      'a\r\n.pgp', '${7*7}.pgp', '{{7*7}}.pgp', 'x.json', 'package.json', '.env', 'notes.txt.filepart', '.bashrc', 'autorun.xml', '-rf.pgp', 'x'.repeat(4096) + '.pgp']) {
      expect(() => classifyUploadName(bad), JSON.stringify(bad.slice(0, 20))).to.throw(PgwError);
    }
  });
});
