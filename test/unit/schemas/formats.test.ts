// test-pass: once
import { expect } from 'chai';
import {
  BSN_PLACEHOLDER,
  isAgb,
  isBsn11Proef,
  isCalendarDate,
  isDutchPostcode,
  isEmail,
  isNineDigits,
  isRfc3339DateTime,
  isUzovi,
} from '../../../schemas/formats.js';
import { bsnCheckDigit, invalidChecksumBsn, validBsn } from '../../../schemas/testing/sample-records.js';

/** Independent 11-proef for cross-checking (written differently from the one under test). */
function referenceElfProef(s: string): boolean {
  if (!/^\d{9}$/.test(s) || s === '000000000') return false;
  const weights = [9, 8, 7, 6, 5, 4, 3, 2, -1];
  const sum = [...s].reduce((acc, ch, i) => acc + Number(ch) * weights[i]!, 0);
  return sum % 11 === 0;
}

function elapsedMs(fn: () => void): number {
  const t = performance.now();
  fn();
  return performance.now() - t;
}

describe('schemas/formats', () => {
  describe('isBsn11Proef', () => {
    it('accepts well-known valid BSNs', () => {
      for (const bsn of ['123456782', '111222333', '999993653']) expect(isBsn11Proef(bsn), bsn).to.equal(true);
    });

    it('accepts generated BSNs and agrees with an independent implementation', () => {
      for (let seed = 0; seed < 2000; seed++) {
        const bsn = validBsn(seed);
        expect(bsn).to.match(/^\d{9}$/);
        expect(isBsn11Proef(bsn), bsn).to.equal(true);
        expect(referenceElfProef(bsn), bsn).to.equal(true);
        const wrong = invalidChecksumBsn(seed);
        expect(isBsn11Proef(wrong), wrong).to.equal(false);
      }
      // a spread of arbitrary 9-digit numbers: both implementations agree
      for (let n = 100_000_000; n < 1_000_000_000; n += 7_654_321) {
        const s = String(n);
        expect(isBsn11Proef(s), s).to.equal(referenceElfProef(s));
      }
    });

    it('rejects a single-digit typo in a valid BSN', () => {
      expect(isBsn11Proef('123456782')).to.equal(true);
      expect(isBsn11Proef('123456783')).to.equal(false);
      expect(isBsn11Proef('223456782')).to.equal(false);
    });

    it('rejects the placeholder, all zeros, and wrong shapes', () => {
      expect(BSN_PLACEHOLDER).to.equal('999999999');
      expect(isBsn11Proef(BSN_PLACEHOLDER)).to.equal(false);
      expect(isBsn11Proef('000000000')).to.equal(false);
      for (const s of ['', '12345678', '1234567820', '12345678a', ' 123456782', '123456782 ', '１２３４５６７８２', '12345-678']) {
        expect(isBsn11Proef(s), JSON.stringify(s)).to.equal(false);
      }
    });

    it('bsnCheckDigit returns null when no digit completes the 11-proef', () => {
      // 9*1 + 8*0 ... = 9+... pick a prefix whose weighted sum is 10 mod 11
      let found = false;
      for (let k = 0; k < 1000 && !found; k++) {
        const prefix = `9999${String(k).padStart(4, '0')}`;
        if (bsnCheckDigit(prefix) === null) {
          found = true;
          for (let d = 0; d <= 9; d++) expect(isBsn11Proef(`${prefix}${d}`)).to.equal(false);
        }
      }
      expect(found).to.equal(true);
    });

    it('isNineDigits is only about shape', () => {
      expect(isNineDigits('123456783')).to.equal(true);
      expect(isNineDigits('12345678')).to.equal(false);
    });
  });

  describe('isDutchPostcode', () => {
    it('accepts 1234 AB and 1234AB', () => {
      for (const s of ['1234 AB', '1234AB', '9999 ZZ', '1000 AA', '2511 CV']) expect(isDutchPostcode(s), s).to.equal(true);
    });

    it('rejects SA, SD, SS, a leading zero, lower case and other shapes', () => {
      for (const s of ['1234 SA', '1234SD', '1234 SS', '0123 AB', '1234 ab', '1234 Ab', '1234  AB', '123 AB', '12345 AB',
        '1234-AB', 'AB 1234', '1234 A', '', ' 1234 AB']) {
        expect(isDutchPostcode(s), JSON.stringify(s)).to.equal(false);
      }
    });

    it('accepts other S combinations', () => {
      expect(isDutchPostcode('1234 SB')).to.equal(true);
      expect(isDutchPostcode('1234 AS')).to.equal(true);
    });
  });

  describe('isUzovi and isAgb', () => {
    it('isUzovi accepts exactly 4 digits', () => {
      expect(isUzovi('3311')).to.equal(true);
      expect(isUzovi('0101')).to.equal(true);
      for (const s of ['331', '33111', '33a1', '', ' 3311']) expect(isUzovi(s), s).to.equal(false);
    });

    it('isAgb accepts exactly 8 digits', () => {
      expect(isAgb('33000001')).to.equal(true);
      for (const s of ['3300000', '330000011', '3300000x', '']) expect(isAgb(s), s).to.equal(false);
    });
  });

  describe('isCalendarDate', () => {
    it('accepts real dates including leap days', () => {
      for (const s of ['2024-02-29', '2000-02-29', '2023-12-31', '1999-01-01', '2025-04-30']) {
        expect(isCalendarDate(s), s).to.equal(true);
      }
    });

    it('rejects impossible dates and non-leap leap days', () => {
      for (const s of ['2023-02-29', '1900-02-29', '2100-02-29', '2024-02-30', '2024-04-31', '2024-13-01', '2024-00-10',
        '2024-01-00', '2024-1-01', '24-01-01', '2024/01/01', '2024-01-01T00:00:00Z', '', '2024-01-32']) {
        expect(isCalendarDate(s), s).to.equal(false);
      }
    });
  });

  describe('isRfc3339DateTime', () => {
    it('accepts date-times with an offset', () => {
      for (const s of ['2025-03-01T09:30:00Z', '2025-03-01T09:30:00.123Z', '2025-03-01T09:30:00+01:00', '2024-02-29T23:59:59-12:00']) {
        expect(isRfc3339DateTime(s), s).to.equal(true);
      }
    });

    it('rejects missing offsets, bad times and bad dates', () => {
      for (const s of ['2025-03-01T09:30:00', '2025-03-01 09:30:00Z', '2025-03-01T24:00:00Z', '2025-03-01T09:60:00Z',
        '2023-02-29T09:30:00Z', '2025-03-01T09:30:00+25:00', '2025-03-01t09:30:00z', '']) {
        expect(isRfc3339DateTime(s), s).to.equal(false);
      }
    });
  });

  describe('isEmail', () => {
    it('accepts ordinary addresses', () => {
      for (const s of ['client7@example.test', 'a.b+c@sub.example.nl', "o'brien@example.com", 'x_y@a-b.example.org']) {
        expect(isEmail(s), s).to.equal(true);
      }
    });

    it('rejects malformed addresses', () => {
      for (const s of ['plainaddress', '@example.nl', 'a@', 'a@b', 'a@@example.nl', 'a@b@example.nl', '.a@example.nl',
        'a.@example.nl', 'a..b@example.nl', 'a@-example.nl', 'a@example-.nl', 'a@example.n1', 'a b@example.nl',
        'a@example..nl', `${'a'.repeat(65)}@example.nl`, `a@${'b'.repeat(64)}.nl`, `a@${'b.'.repeat(130)}nl`]) {
        expect(isEmail(s), s).to.equal(false);
      }
    });
  });

  describe('the shapes, against their regular expressions', () => {
    // The fixed-shape formats are written as character loops (the validate stage runs them
    // per record); these are the shapes they implement, as the regular expressions they were.
    const shapes: [string, (s: string) => boolean, (s: string) => boolean][] = [
      ['nine digits', isNineDigits, (s) => /^[0-9]{9}$/.test(s)],
      ['UZOVI', isUzovi, (s) => /^[0-9]{4}$/.test(s)],
      ['AGB', isAgb, (s) => /^[0-9]{8}$/.test(s)],
      ['postcode', isDutchPostcode, (s) => /^[1-9][0-9]{3} ?[A-Z]{2}$/.test(s) && !['SA', 'SD', 'SS'].includes(s.slice(-2))],
      ['date', isCalendarDate, (s) => {
        const t = Date.parse(`${s}T00:00:00Z`); // proleptic Gregorian, as the 400-year leap rule
        return /^[0-9]{4}-[0-9]{2}-[0-9]{2}$/.test(s) && Number.isFinite(t) && new Date(t).toISOString().slice(0, 10) === s;
      }],
    ];
    const chars = ['0', '1', '5', '9', '/', ':', 'A', 'S', 'D', 'Z', 'a', ' ', '-', '\n', '٣', '０'];

    it('agree on 50,000 strings made of digits, letters and their neighbours', () => {
      let seed = 7;
      const rnd = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 4294967296);
      const near = ['123456782', '1234', '12345678', '1234 AB', '1234AB', '2024-02-29', '0234 AB', '1234 SA', '2023-12-31', '2100-02-28'];
      for (let i = 0; i < 50_000; i++) {
        let s = near[i % near.length]!;
        // change, insert or drop a character or two
        for (let k = Math.floor(rnd() * 3); k > 0; k--) {
          const at = Math.floor(rnd() * (s.length + 1));
          const c = chars[Math.floor(rnd() * chars.length)]!;
          const op = Math.floor(rnd() * 3);
          s = op === 0 ? s.slice(0, at) + c + s.slice(at + 1) : op === 1 ? s.slice(0, at) + c + s.slice(at) : s.slice(0, at) + s.slice(at + 1);
        }
        for (const [name, fn, shape] of shapes) expect(fn(s), `${name}: ${JSON.stringify(s)}`).to.equal(shape(s));
      }
    });
  });

  describe('linear time on huge inputs', () => {
    const huge = '1'.repeat(1_000_000);
    const hugeAlpha = 'a'.repeat(1_000_000);
    const adversarial = [
      huge,
      hugeAlpha,
      `${'a.'.repeat(500_000)}@`,
      `a@${'a-'.repeat(500_000)}`,
      `${'1234 '.repeat(200_000)}`,
      `${'2024-01-01'.repeat(100_000)}`,
    ];

    it('every format answers a 1 MB string in well under a second', () => {
      const fns = [isBsn11Proef, isDutchPostcode, isUzovi, isAgb, isCalendarDate, isRfc3339DateTime, isEmail, isNineDigits];
      for (const fn of fns) {
        for (const s of adversarial) {
          let result = true;
          const ms = elapsedMs(() => { result = fn(s); });
          expect(result, fn.name).to.equal(false);
          expect(ms, fn.name).to.be.below(250);
        }
      }
    });

    it('isEmail stays fast on near-miss inputs at the length limit', () => {
      const nearMiss = [`${'a'.repeat(64)}@${'b-'.repeat(90)}`, `a@${'b.'.repeat(124)}1`, `${'a.'.repeat(32)}@x.y`];
      const ms = elapsedMs(() => {
        for (let i = 0; i < 1000; i++) for (const s of nearMiss) isEmail(s);
      });
      expect(ms).to.be.below(500);
    });
  });
});
