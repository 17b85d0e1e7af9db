/**
 * Runs before openpgp.js is evaluated (imported first by keys/pgp/openpgp-lib.ts): hides the
 * global DecompressionStream until {@link restoreDecompressionStream}.
 */
const saved = Object.getOwnPropertyDescriptor(globalThis, 'DecompressionStream');
if (saved) Reflect.deleteProperty(globalThis, 'DecompressionStream');

export function restoreDecompressionStream(): void {
  if (saved && !Object.getOwnPropertyDescriptor(globalThis, 'DecompressionStream')) Object.defineProperty(globalThis, 'DecompressionStream', saved);
}
