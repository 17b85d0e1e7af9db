// test-pass: once
import { expect } from 'chai';
import { isLate, parseSchedule } from '../../../gateway/admin/schedule.js';
import { isPgwError } from '../../../gateway/core/errors.js';

describe('expected-batch calendars', () => {
  it('parses day ranges, lists and daily', () => {
    expect([...parseSchedule('mon-fri 10:00').days].sort()).to.deep.equal([1, 2, 3, 4, 5]);
    expect([...parseSchedule('mon,wed,fri 09:30').days].sort()).to.deep.equal([1, 3, 5]);
    expect(parseSchedule('daily 08:15').days.size).to.equal(7);
    expect(parseSchedule('fri-mon 07:00').days).to.deep.equal(new Set([5, 6, 0, 1]));
    expect(parseSchedule('Mon-Fri 10:00').dueMinutes).to.equal(600);
    for (const bad of ['', 'weekdays 10:00', 'mon-fri', 'mon-fri 24:00', 'mon-fri 9:00', 'mon-xyz 10:00', 'mon-fri 10:00; rm -rf']) {
      let code: string | null = null;
      try { parseSchedule(bad); } catch (e) { code = isPgwError(e) ? e.code : 'other'; }
      expect(code, bad).to.equal('schedule.invalid');
    }
  });

  it('is late on an expected day after the due time in the partner\'s time zone, until a batch of that day arrives', () => {
    const s = parseSchedule('mon-fri 10:00');
    const tz = 'Europe/Amsterdam';
    // Thursday 2026-12-03: 10:00 in Amsterdam is 09:00 UTC.
    expect(isLate(s, new Date('2026-12-03T08:59:00Z'), tz, null)).to.equal(false);
    expect(isLate(s, new Date('2026-12-03T09:01:00Z'), tz, null)).to.equal(true);
    expect(isLate(s, new Date('2026-12-03T09:01:00Z'), tz, new Date('2026-12-02T15:00:00Z'))).to.equal(true);
    expect(isLate(s, new Date('2026-12-03T09:01:00Z'), tz, new Date('2026-12-03T06:00:00Z'))).to.equal(false);
    // 23:30 UTC on Wednesday is already Thursday 00:30 in Amsterdam: a batch then counts for Thursday.
    expect(isLate(s, new Date('2026-12-03T12:00:00Z'), tz, new Date('2026-12-02T23:30:00Z'))).to.equal(false);
    // Saturday is not expected.
    expect(isLate(s, new Date('2026-12-05T12:00:00Z'), tz, null)).to.equal(false);
  });
});
