/** Rewrites the generated tables in README.md (`npm run docs`); a unit test checks them. */
import { readFileSync, writeFileSync } from 'node:fs';
import { errorCodeTable } from '../gateway/core/error-table.js';
import { configTable } from '../gateway/core/config-table.js';

export function renderReadme(text: string): string {
  return text
    .replace(/(<!-- config-table -->)[\s\S]*?(<!-- \/config-table -->)/, () => `<!-- config-table -->\n${configTable()}\n<!-- /config-table -->`)
    .replace(/(<!-- error-table -->)[\s\S]*?(<!-- \/error-table -->)/, () => `<!-- error-table -->\n${errorCodeTable()}\n<!-- /error-table -->`);
}

if (process.argv[1]?.endsWith('render-docs.ts')) {
  const file = new URL('../README.md', import.meta.url);
  writeFileSync(file, renderReadme(readFileSync(file, 'utf8')));
}
