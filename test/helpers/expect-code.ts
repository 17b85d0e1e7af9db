/**
 * The one way tests ask which registry code something failed with (gateway/core/errors.ts).
 * `what` is a promise, or a function that is run now (sync or async).
 */
import { expect } from 'chai';
import { isPgwError, type ErrorCode } from '../../gateway/core/errors.js';

/** The PgwError code `what` fails with, or 'ok'; anything else is rethrown (a bug, not a verdict). */
export async function codeOf(what: Promise<unknown> | (() => unknown)): Promise<string> {
  try {
    await (typeof what === 'function' ? what() : what);
    return 'ok';
  } catch (e) {
    if (isPgwError(e)) return e.code;
    throw e;
  }
}

/** `what` fails with the PgwError `code`: not another code, not success, not some other error. */
export async function expectCode(what: Promise<unknown> | (() => unknown), code: ErrorCode, message?: string): Promise<void> {
  expect(await codeOf(what), message ?? `expected ${code}`).to.equal(code);
}
