// test-pass: once
import { expect } from 'chai';
import { csrfMatches, hashPassword, verifyPassword } from '../../../gateway/admin/operators.js';

describe('operators: passwords and CSRF tokens', () => {
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
