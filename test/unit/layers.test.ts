/**
 * Every import arrow points one way. gateway/core/ is the ground floor that every folder
 * imports (errors, config, ledger, Redis, file names) and it imports nothing outside itself;
 * keys/ and schemas/ stand on it alone; workers/ use those and the admin services, never a
 * protocol adapter or the ingest. An import against these rules fails here, naming the file.
 */
import { expect } from 'chai';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { filesUnder } from '../helpers/files-under.js';

const ROOT = path.resolve(import.meta.dirname, '../..');

/** Folder (relative to the root) → the folders its files may import from. */
const MAY_IMPORT: [string, string[]][] = [
  ['gateway/core/', ['gateway/core/']],
  ['keys/', ['keys/', 'gateway/core/']],
  ['schemas/', ['schemas/', 'gateway/core/']],
  ['workers/', ['workers/', 'keys/', 'schemas/', 'gateway/core/', 'gateway/admin/']],
];

/** The repository paths a source file imports (relative specifiers only: packages are not ours). */
async function importsOf(file: string): Promise<string[]> {
  const text = await fsp.readFile(file, 'utf8');
  const specs = [...text.matchAll(/(?:\bfrom\s*|\bimport\s*\(\s*|^import\s+)['"](\.{1,2}\/[^'"]+)['"]/gm)].map((m) => m[1]!);
  return specs.map((s) => path.relative(ROOT, path.resolve(path.dirname(file), s)));
}

describe('layers: every import points down', () => {
  it('gateway/core imports only itself; keys/ and schemas/ only gateway/core; workers/ no adapter and no ingest', async () => {
    const wrong: string[] = [];
    for (const [folder, allowed] of MAY_IMPORT) {
      for (const file of await filesUnder(path.join(ROOT, folder))) {
        if (!/\.ts$/.test(file)) continue;
        for (const target of await importsOf(file)) {
          if (!allowed.some((a) => target.startsWith(a))) wrong.push(`${path.relative(ROOT, file)} → ${target}`);
        }
      }
    }
    expect(wrong).to.deep.equal([]);
  });

  it('control: the check reads the imports of a real file', async () => {
    const stage = path.join(ROOT, 'workers', 'ack-stage.ts');
    const targets = await importsOf(stage);
    expect(targets, 'ack-stage imports the ledger').to.include('gateway/core/ledger/index.js');
    expect(targets.every((t) => !t.startsWith('gateway/ingest/'))).to.equal(true);
  });
});
