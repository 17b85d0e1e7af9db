/**
 * Safe JSON parsing for batch payloads: nesting depth is checked before `JSON.parse`
 * runs, and duplicate object keys (which `JSON.parse` silently collapses, keeping the
 * last) are detected after it, both in linear time.
 *
 * How duplicates are found without storing keys: in JSON, a `:` outside strings occurs
 * exactly once per object member. `JSON.parse` creates one own property per *distinct*
 * key of each object (`__proto__` included — it becomes an own property, never the
 * prototype). So the document has a duplicate key somewhere iff the number of `:` outside
 * strings is larger than the total number of own keys of all parsed objects.
 */
import { PgwError } from '../gateway/core/errors.js';

/** JSON's structural bytes (also used by json-batch-scanner.ts). */
export const QUOTE = 0x22;
export const BACKSLASH = 0x5c;
export const COMMA = 0x2c;
export const COLON = 0x3a;
export const OPEN_BRACE = 0x7b;
export const OPEN_BRACKET = 0x5b;
export const CLOSE_BRACE = 0x7d;
export const CLOSE_BRACKET = 0x5d;

/**
 * One pass over `text`: throws `limits.json_depth` as soon as brackets outside strings
 * nest deeper than `maxDepth`, and returns the number of `:` outside strings (the number
 * of object members if `text` is valid JSON). Malformed text is not diagnosed here.
 */
export function scanJsonStructure(text: string, maxDepth: number): number {
  let depth = 0;
  let colons = 0;
  const n = text.length;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c === QUOTE) {
      // jump to the closing quote: the next `"` not preceded by an odd run of `\`
      let j = i + 1;
      for (;;) {
        j = text.indexOf('"', j);
        if (j === -1) return colons; // unterminated string: JSON.parse reports it
        let k = j - 1;
        while (k > i && text.charCodeAt(k) === BACKSLASH) k--;
        if (((j - 1 - k) & 1) === 0) break;
        j++;
      }
      i = j;
    } else if (c === OPEN_BRACE || c === OPEN_BRACKET) {
      if (++depth > maxDepth) {
        throw new PgwError('limits.json_depth', undefined, { limit: maxDepth });
      }
    } else if (c === CLOSE_BRACE || c === CLOSE_BRACKET) {
      depth--;
    } else if (c === COLON) {
      colons++;
    }
  }
  return colons;
}

/** Total number of own keys of every object in a parsed JSON value (iterative walk). */
export function countOwnKeys(root: unknown): number {
  let count = 0;
  const stack: unknown[] = [root];
  while (stack.length > 0) {
    const v = stack.pop();
    if (Array.isArray(v)) {
      for (let i = 0; i < v.length; i++) {
        const x: unknown = v[i];
        if (typeof x === 'object' && x !== null) stack.push(x);
      }
    } else if (typeof v === 'object' && v !== null) {
      const keys = Object.keys(v);
      count += keys.length;
      for (let i = 0; i < keys.length; i++) {
        const x: unknown = (v as Record<string, unknown>)[keys[i]!];
        if (typeof x === 'object' && x !== null) stack.push(x);
      }
    }
  }
  return count;
}

/**
 * Extracts the numeric position facts from a `JSON.parse` error message. The message
 * itself is never kept: V8 quotes a snippet of the input in it.
 */
function positionOf(err: unknown): Record<string, number> {
  const msg = err instanceof Error ? err.message : '';
  const out: Record<string, number> = {};
  const pos = /at position ([0-9]{1,12})/.exec(msg);
  if (pos) out.position = Number(pos[1]);
  const lc = /\(line ([0-9]{1,12}) column ([0-9]{1,12})\)/.exec(msg);
  if (lc) {
    out.line = Number(lc[1]);
    out.column = Number(lc[2]);
  }
  return out;
}

/**
 * Parses a JSON batch: `limits.json_depth` before parsing, `payload.malformed` when it is
 * not JSON, `payload.duplicate_keys` when any object repeats a key.
 */
export function parseJsonPayload(text: string, maxDepth: number): unknown {
  const members = scanJsonStructure(text, maxDepth);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    // no `cause`: the SyntaxError's message carries input text
    throw new PgwError('payload.malformed', undefined, { format: 'json', ...positionOf(err) });
  }
  if (countOwnKeys(value) !== members) {
    throw new PgwError('payload.duplicate_keys', undefined, { format: 'json' });
  }
  return value;
}
