/**
 * A fast path for the common record of a big batch: a flat JSON object whose values are
 * short printable-ASCII strings without escapes. Such a record is checked straight from its
 * bytes — grammar, known and required keys, no key twice, string lengths, formats and
 * patterns — without `JSON.parse` or Ajv, which together cost most of the validate stage
 * (bench/RESULTS.md §5).
 *
 * It only ever says "valid" or "not sure": any byte, key or value outside that simple subset,
 * and any rule that fails, gives `null`, and the caller then judges the record the normal
 * way (JSON.parse + the compiled Ajv validator), which finds its exact issues. So the issues
 * reported never come from here, and a record accepted here is one Ajv accepts too
 * (test/unit/schemas/flat-record-check.test.ts compares both on generated records).
 *
 * Built from the record schema itself; a schema using anything beyond `type: string`,
 * `minLength`, `maxLength`, `format` and `pattern` on its properties gets no fast path.
 */
import type { AnySchemaObject } from 'ajv/dist/2020.js';
import { isAscii } from 'node:buffer';
import { CLOSE_BRACE, COLON, COMMA, OPEN_BRACE, QUOTE } from './json-payload.js';

interface FieldRule {
  name: string;
  bit: number;
  min: number;
  max: number;
  /** Format and pattern checks, all must pass. */
  tests: ((s: string) => boolean)[];
  /** Where the value goes in the returned array, or -1 (not asked for). */
  keepAt: number;
  /** The value is needed as a string (tests, or asked for). */
  asString: boolean;
}

/** Annotation keywords that do not affect validity. */
const ANNOTATIONS = new Set(['description', 'title', '$comment', 'examples']);
const FIELD_KEYWORDS = new Set(['type', 'minLength', 'maxLength', 'format', 'pattern', ...ANNOTATIONS]);
const RECORD_KEYWORDS = new Set(['type', 'required', 'additionalProperties', 'properties', ...ANNOTATIONS]);
/** Bits of a 32-bit mask, one per property. */
const MAX_FIELDS = 31;

function isWhite(c: number): boolean {
  return c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;
}

/** Control characters: white space between tokens, invalid inside a JSON string. */
const CONTROL = /[\u0000-\u001f]/;

function hasControl(text: string, from: number, to: number): boolean {
  for (let j = from; j < to; j++) if (text.charCodeAt(j) < 0x20) return true;
  return false;
}

export class FlatRecordCheck {
  private readonly byName = new Map<string, FieldRule>();
  /** The fields of the last record checked, in the order it had them. */
  private readonly order: FieldRule[] = [];
  private readonly requiredMask: number;

  /** An array of `keep.length` undefined values, copied for each record's result. */
  private readonly noValues: (string | undefined)[];

  private constructor(rules: FieldRule[], required: readonly string[], kept: number) {
    this.noValues = Array.from({ length: kept }, () => undefined);
    for (const r of rules) this.byName.set(r.name, r);
    let mask = 0;
    for (const name of required) mask |= this.byName.get(name)!.bit;
    this.requiredMask = mask;
  }

  /**
   * The fast check for `recordSchema`, or null when the schema uses more than it supports.
   * `formats` are the same functions registered with Ajv; `keep` names the fields whose
   * values {@link check} returns, in that order (the date rules, the subject index).
   */
  static compile(recordSchema: AnySchemaObject, formats: Readonly<Record<string, (s: string) => boolean>>, keep: readonly string[]): FlatRecordCheck | null {
    if (Object.keys(recordSchema).some((k) => !RECORD_KEYWORDS.has(k))) return null;
    if (recordSchema.type !== 'object' || recordSchema.additionalProperties !== false) return null;
    const props = recordSchema.properties as Record<string, AnySchemaObject> | undefined;
    const required = (recordSchema.required ?? []) as unknown[];
    if (!props || typeof props !== 'object' || !Array.isArray(required)) return null;
    const names = Object.keys(props);
    if (names.length > MAX_FIELDS || names.includes('__proto__') || required.some((r) => typeof r !== 'string' || !Object.hasOwn(props, r))) return null;
    const rules: FieldRule[] = [];
    for (const [k, name] of names.entries()) {
      const p = props[name]!;
      if (typeof p !== 'object' || p === null || Object.keys(p).some((key) => !FIELD_KEYWORDS.has(key)) || p.type !== 'string') return null;
      const min = p.minLength ?? 0;
      const max = p.maxLength ?? Infinity;
      if (!Number.isInteger(min) || !(Number.isInteger(max) || max === Infinity)) return null;
      const tests: ((s: string) => boolean)[] = [];
      if (p.format !== undefined) {
        const f = typeof p.format === 'string' && Object.hasOwn(formats, p.format) ? formats[p.format] : undefined;
        if (!f) return null;
        tests.push(f);
      }
      if (p.pattern !== undefined) {
        if (typeof p.pattern !== 'string') return null;
        const re = new RegExp(p.pattern, 'u'); // as Ajv compiles it (unicodeRegExp)
        tests.push((s) => re.test(s));
      }
      const keepAt = keep.indexOf(name);
      rules.push({ name, bit: 1 << k, min, max, tests, keepAt, asString: tests.length > 0 || keepAt >= 0 });
    }
    return new FlatRecordCheck(rules, required as string[], keep.length);
  }

  /**
   * The values of the `keep` fields (undefined where absent) when `raw` (exactly one JSON
   * value's bytes) is a plain record that passes every rule; null when not (invalid, or just
   * outside the fast path's subset).
   */
  check(raw: Buffer): (string | undefined)[] | null {
    // Whole-record checks run natively; a byte-by-byte loop in JS costs ~2.5 ns a byte here.
    // ASCII without a backslash: every `"` delimits a string, one character is one code
    // point (the unit of minLength/maxLength), and the latin1 text is the JSON text.
    if (!isAscii(raw)) return null;
    const text = raw.toString('latin1');
    if (text.indexOf('\\') !== -1) return null;
    // Only when the record has control characters at all are its strings searched for them.
    const controls = CONTROL.test(text);
    const n = text.length;
    let i = 0;
    while (isWhite(text.charCodeAt(i))) i++;
    if (text.charCodeAt(i) !== OPEN_BRACE) return null;
    i++;
    // An array, not an object keyed by field name: stores under changing names are slow.
    const out = this.noValues.slice();
    let seen = 0;
    let field = 0;
    for (;;) {
      while (isWhite(text.charCodeAt(i))) i++;
      if (text.charCodeAt(i) !== QUOTE) return null; // also `{}`: judged the normal way
      const keyEnd = text.indexOf('"', i + 1);
      if (keyEnd < 0) return null;
      // Records of a batch mostly list their fields in one order: try the field that came
      // at this position last time before building the key string for a lookup.
      const guess = this.order[field];
      const rule = guess !== undefined && keyEnd - i - 1 === guess.name.length && text.startsWith(guess.name, i + 1)
        ? guess
        : this.byName.get(text.slice(i + 1, keyEnd));
      if (rule === undefined || (seen & rule.bit) !== 0) return null;
      seen |= rule.bit;
      this.order[field++] = rule;
      i = keyEnd + 1;
      while (isWhite(text.charCodeAt(i))) i++;
      if (text.charCodeAt(i) !== COLON) return null;
      i++;
      while (isWhite(text.charCodeAt(i))) i++;
      if (text.charCodeAt(i) !== QUOTE) return null;
      const valueEnd = text.indexOf('"', i + 1);
      if (valueEnd < 0 || (controls && hasControl(text, i + 1, valueEnd))) return null;
      const length = valueEnd - i - 1;
      if (length < rule.min || length > rule.max) return null;
      if (rule.asString) {
        const value = text.slice(i + 1, valueEnd);
        for (const test of rule.tests) if (!test(value)) return null;
        if (rule.keepAt >= 0) out[rule.keepAt] = value;
      }
      i = valueEnd + 1;
      while (isWhite(text.charCodeAt(i))) i++;
      const c = text.charCodeAt(i);
      i++;
      if (c === CLOSE_BRACE) break;
      if (c !== COMMA) return null;
    }
    while (isWhite(text.charCodeAt(i))) i++;
    if (i !== n) return null;
    return (seen & this.requiredMask) === this.requiredMask ? out : null;
  }
}
