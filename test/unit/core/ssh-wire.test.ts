/** core/ssh-wire.ts: length-prefixed SSH strings, bounded, refused when one runs past the end. */
import { expect } from 'chai';
import { readSshStrings } from '../../../gateway/core/ssh-wire.js';

const str = (s: string): Buffer => {
  const b = Buffer.from(s, 'utf8');
  const len = Buffer.alloc(4);
  len.writeUInt32BE(b.length);
  return Buffer.concat([len, b]);
};

describe('core/ssh-wire', () => {
  it('reads the strings in order, at most max, and says where the last one ends', () => {
    const buf = Buffer.concat([str('ssh-ed25519'), str(''), str('tail')]);
    const all = readSshStrings(buf, 10)!;
    expect(all.strings.map(String)).to.deep.equal(['ssh-ed25519', '', 'tail']);
    expect(all.end).to.equal(buf.length);
    const two = readSshStrings(buf, 2)!;
    expect(two.strings.map(String)).to.deep.equal(['ssh-ed25519', '']);
    expect(two.end).to.equal(str('ssh-ed25519').length + 4);
  });

  it('a length or a string that runs past the end → null', () => {
    const whole = str('posix-rename');
    expect(readSshStrings(whole.subarray(0, 3), 1), 'length cut short').to.equal(null);
    expect(readSshStrings(whole.subarray(0, whole.length - 1), 1), 'string cut short').to.equal(null);
    const huge = Buffer.from([0xff, 0xff, 0xff, 0xff, 0x41]);
    expect(readSshStrings(huge, 1), 'a 4 GiB length claim').to.equal(null);
  });
});
