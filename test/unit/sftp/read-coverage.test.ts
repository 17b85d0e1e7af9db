// test-pass: once
import { expect } from 'chai';
import { ReadCoverage } from '../../../gateway/sftp/read-coverage.js';

describe('sftp/read-coverage', () => {
  it('is complete only when [0, size) is covered, in any order', () => {
    const c = new ReadCoverage();
    c.add(64, 96);
    c.add(0, 32);
    expect(c.covers(96)).to.equal(false);
    c.add(32, 64);
    expect(c.covers(96)).to.equal(true);
    expect(c.covers(97)).to.equal(false);
  });
  it('merges overlaps and ignores empty ranges', () => {
    const c = new ReadCoverage();
    c.add(10, 20);
    c.add(5, 5);
    c.add(15, 40);
    c.add(0, 11);
    expect(c.covers(40)).to.equal(true);
  });
  it('an empty file counts once EOF was read', () => {
    const c = new ReadCoverage();
    expect(c.covers(0)).to.equal(false);
    c.sawEof = true;
    expect(c.covers(0)).to.equal(true);
  });
});
