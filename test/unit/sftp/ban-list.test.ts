// test-pass: once
import { expect } from 'chai';
import { BanList } from '../../../gateway/sftp/ban-list.js';

describe('sftp/ban-list', () => {
  let now = 0;
  const clock = () => now;
  beforeEach(() => {
    now = 1_000_000;
  });

  it('bans after maxFailures within the window, only that address', () => {
    const b = new BanList({ maxFailures: 3, windowMs: 60_000, banMs: 10_000 }, clock);
    b.recordFailure('10.0.0.1');
    b.recordFailure('10.0.0.1');
    expect(b.isBanned('10.0.0.1')).to.equal(false);
    b.recordFailure('10.0.0.1');
    expect(b.isBanned('10.0.0.1')).to.equal(true);
    expect(b.isBanned('10.0.0.2')).to.equal(false);
    now += 10_001;
    expect(b.isBanned('10.0.0.1')).to.equal(false);
  });

  it('failures outside the window do not add up; a success resets the count', () => {
    const b = new BanList({ maxFailures: 2, windowMs: 1000, banMs: 10_000 }, clock);
    b.recordFailure('a');
    now += 2000;
    b.recordFailure('a');
    expect(b.isBanned('a')).to.equal(false);
    b.recordSuccess('a');
    b.recordFailure('a');
    expect(b.isBanned('a')).to.equal(false);
  });

  it('each further ban doubles, up to the cap', () => {
    const b = new BanList({ maxFailures: 1, banMs: 1000, maxBanMs: 3000 }, clock);
    const durations: number[] = [];
    for (let i = 0; i < 4; i++) {
      b.recordFailure('x');
      durations.push(b.banRemainingMs('x'));
      now += b.banRemainingMs('x') + 1;
    }
    expect(durations).to.deep.equal([1000, 2000, 3000, 3000]);
  });

  it('tracks a bounded number of addresses', () => {
    const b = new BanList({ maxFailures: 5, maxTracked: 10 }, clock);
    for (let i = 0; i < 1000; i++) b.recordFailure(`10.0.${i >> 8}.${i & 255}`);
    expect((b as unknown as { entries: Map<string, unknown> }).entries.size).to.be.at.most(10);
  });
});
