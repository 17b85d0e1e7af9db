/**
 * Renders the error-code registry as the Markdown table in the README, so the two cannot
 * drift: `test/unit/scripts/render-docs.test.ts` fails when the README's table differs.
 */
import { ERROR_CODES } from './errors.js';

export function errorCodeTable(): string {
  const rows = Object.entries(ERROR_CODES).map(([code, info]) => `| \`${code}\` | ${info.scope} | ${info.message} |`);
  return ['| code | where | meaning |', '| --- | --- | --- |', ...rows].join('\n');
}
