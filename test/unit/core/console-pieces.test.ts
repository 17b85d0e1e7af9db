// test-pass: once
import { expect } from 'chai';
import { html, raw, escapeHtml } from '../../../gateway/console/html.js';
import { csrfMatches, hashPassword, verifyPassword } from '../../../gateway/admin/operators.js';

describe('console pieces', () => {
  it('escapes every interpolated value; only our own fragments pass', () => {
    const name = '<script>alert(1)</script>${7*7}{{7*7}}"\'&';
    const out = html`<td title="${name}">${name}</td>${raw('<b>ours</b>')}${[html`<i>${'<x>'}</i>`]}`.value;
    expect(out).to.not.include('<script>').and.not.include('"\'');
    expect(out).to.include('&lt;script&gt;').and.include('${7*7}{{7*7}}').and.include('<b>ours</b>').and.include('<i>&lt;x&gt;</i>');
    expect(escapeHtml('a&b')).to.equal('a&amp;b');
  });

  it('hashes passwords slowly and salted, and verifies them', async function () {
    this.timeout(20_000);
    const a = await hashPassword('correct horse battery');
    const b = await hashPassword('correct horse battery');
    expect(a).to.match(/^scrypt\$32768\$8\$1\$/).and.not.equal(b);
    expect(await verifyPassword('correct horse battery', a)).to.equal(true);
    expect(await verifyPassword('correct horse batterx', a)).to.equal(false);
    expect(await verifyPassword('x', 'md5$whatever')).to.equal(false);
  });

  it('compares CSRF tokens exactly', () => {
    expect(csrfMatches('abc', 'abc')).to.equal(true);
    for (const v of ['abd', 'ab', 'abcd', undefined, ['abc'], 1]) expect(csrfMatches('abc', v)).to.equal(false);
  });
});
