/**
 * Where a JSON text stops being JSON, as a line and column, found without quoting the text.
 * `JSON.parse`'s own message cannot be shown: V8 quotes the input around the error
 * (`Unexpected token 'h', ..."sphrase": hunter2"...`), which for a config file may be the
 * passphrase, and in that form it gives no position at all.
 */

export interface JsonSyntaxPosition {
  /** 1-based. */
  line: number;
  /** 1-based, in UTF-16 code units as editors count them. */
  column: number;
}

const SCALAR = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?|true|false|null/y;

type Want = 'value' | 'value-or-close' | 'key' | 'key-or-close' | 'colon' | 'comma-or-close' | 'end';

/**
 * The position of the first character that makes `text` invalid JSON (the end of the text
 * when it stops too early); null when no error is found. Iterative: nesting depth costs no
 * stack.
 */
export function jsonSyntaxErrorAt(text: string): JsonSyntaxPosition | null {
  const offset = firstErrorOffset(text);
  if (offset === null) return null;
  let line = 1;
  let lineStart = 0;
  for (let i = 0; i < offset; i++) {
    if (text.charCodeAt(i) === 0x0a) {
      line++;
      lineStart = i + 1;
    }
  }
  return { line, column: offset - lineStart + 1 };
}

function firstErrorOffset(text: string): number | null {
  const n = text.length;
  const stack: string[] = [];
  let want: Want = 'value';
  let i = 0;
  const afterValue = (): Want => (stack.length > 0 ? 'comma-or-close' : 'end');
  for (;;) {
    while (i < n && (text[i] === ' ' || text[i] === '\t' || text[i] === '\n' || text[i] === '\r')) i++;
    if (i >= n) return want === 'end' ? null : n;
    const c = text[i];
    if (want === 'end') return i;
    if (want === 'colon') {
      if (c !== ':') return i;
      i++;
      want = 'value';
    } else if (want === 'comma-or-close') {
      const open = stack[stack.length - 1];
      if (c === ',') {
        i++;
        want = open === '{' ? 'key' : 'value';
      } else if ((open === '{' && c === '}') || (open === '[' && c === ']')) {
        stack.pop();
        i++;
        want = afterValue();
      } else return i;
    } else if (want === 'key' || want === 'key-or-close') {
      if (want === 'key-or-close' && c === '}') {
        stack.pop();
        i++;
        want = afterValue();
      } else if (c === '"') {
        const end = stringEnd(text, i);
        if (end < 0) return -end - 1;
        i = end;
        want = 'colon';
      } else return i;
    } else if (want === 'value-or-close' && c === ']') {
      stack.pop();
      i++;
      want = afterValue();
    } else if (c === '{' || c === '[') {
      stack.push(c);
      i++;
      want = c === '{' ? 'key-or-close' : 'value-or-close';
    } else if (c === '"') {
      const end = stringEnd(text, i);
      if (end < 0) return -end - 1;
      i = end;
      want = afterValue();
    } else {
      SCALAR.lastIndex = i;
      if (!SCALAR.test(text)) return i;
      i = SCALAR.lastIndex;
      want = afterValue();
    }
  }
}

/** The offset after the string starting at `start` (a `"`), or −(offset of the error) − 1. */
function stringEnd(text: string, start: number): number {
  for (let j = start + 1; j < text.length; j++) {
    const ch = text.charCodeAt(j);
    if (ch === 0x22) return j + 1;
    if (ch < 0x20) return -j - 1;
    if (ch === 0x5c) {
      const esc = text[j + 1];
      if (esc !== undefined && '"\\/bfnrt'.includes(esc)) j++;
      else if (esc === 'u' && /^[0-9A-Fa-f]{4}$/.test(text.slice(j + 2, j + 6))) j += 5;
      else return -j - 1;
    }
  }
  return -text.length - 1;
}
