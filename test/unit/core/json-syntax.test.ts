// test-pass: once
import { expect } from 'chai';
import { jsonSyntaxErrorAt } from '../../../gateway/core/json-syntax.js';

/** A small seeded generator: the same documents on every run. */
function rng(seed: number): () => number {
  let x = seed >>> 0;
  return () => {
    x ^= x << 13; x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5; x >>>= 0;
    return x / 0x100000000;
  };
}

describe('core/json-syntax (position of a JSON syntax error, without the text)', () => {
  it('names line and column of the first bad character, or the end of a text that stops early', () => {
    expect(jsonSyntaxErrorAt('{"a": 1}')).to.equal(null);
    expect(jsonSyntaxErrorAt(' [1, {"b": [true, false, null, -0.5e+3, "\\u00e9\\n"]}] ')).to.equal(null);
    expect(jsonSyntaxErrorAt('{\n  "a": 1,\n  "b": x\n}')).to.deep.equal({ line: 3, column: 8 });
    expect(jsonSyntaxErrorAt('{"a": 1,}')).to.deep.equal({ line: 1, column: 9 });
    expect(jsonSyntaxErrorAt('{"a": "b')).to.deep.equal({ line: 1, column: 9 });
    expect(jsonSyntaxErrorAt('')).to.deep.equal({ line: 1, column: 1 });
    expect(jsonSyntaxErrorAt('{"a": "tab\there"}')).to.deep.equal({ line: 1, column: 11 });
    expect(jsonSyntaxErrorAt('{"a": "\\x"}')).to.deep.equal({ line: 1, column: 8 });
    expect(jsonSyntaxErrorAt('\ufeff{}')).to.deep.equal({ line: 1, column: 1 });
    expect(jsonSyntaxErrorAt('[01]')).to.deep.equal({ line: 1, column: 3 });
    expect(jsonSyntaxErrorAt('['.repeat(100_000))).to.deep.equal({ line: 1, column: 100_001 }); // no recursion
  });

  it('agrees with JSON.parse on which of 3,000 mutated documents are valid', () => {
    const next = rng(19);
    const base = JSON.stringify({ sftpPort: 2222, keyPassphrase: 'a "quoted" \\ secret', limits: { records: 5, ratio: -1.5e3 }, list: [true, false, null, 'x'], empty: {}, none: [] }, null, 2);
    const alphabet = '{}[]:,"\\ \n\tetrufalsn0123456789-+.eEu';
    let invalid = 0;
    for (let n = 0; n < 3000; n++) {
      const chars = [...base];
      for (let k = 1 + Math.floor(next() * 3); k > 0; k--) {
        const at = Math.floor(next() * chars.length);
        const op = next();
        const c = alphabet[Math.floor(next() * alphabet.length)]!;
        if (op < 0.4) chars.splice(at, 1);
        else if (op < 0.7) chars.splice(at, 0, c);
        else chars[at] = c;
      }
      const text = chars.join('');
      let ok = true;
      try { JSON.parse(text); } catch { ok = false; }
      const at = jsonSyntaxErrorAt(text);
      expect(at === null, text).to.equal(ok);
      if (!ok) invalid++;
    }
    expect(invalid).to.be.greaterThan(1000);
  });
});
