// `npm run build` (also run by `npm ci`): compile the runtime into dist/, stamped with the
// hash of the sources it was built from (bin/launch.js runs it only while they match).
// Without TypeScript installed (a production install without dev dependencies) nothing is
// built and `pgw` runs the sources through tsx.
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { sourceHash, STAMP } from '../bin/launch.js';

const root = path.resolve(import.meta.dirname, '..');
const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc');
if (!existsSync(tsc)) {
  console.log('build: TypeScript is not installed; pgw will run the sources through tsx');
  process.exit(0);
}
const hash = sourceHash(root);
const tmp = path.join(root, 'dist.tmp');
rmSync(tmp, { recursive: true, force: true });
const r = spawnSync(process.execPath, [tsc, '-p', path.join(root, 'tsconfig.build.json'), '--outDir', tmp], { stdio: 'inherit' });
if (r.status !== 0) {
  rmSync(tmp, { recursive: true, force: true });
  console.error('build: tsc failed; nothing replaced');
  process.exit(r.status ?? 1);
}
// Files the runtime reads beside its modules (schemas/*.json).
for (const dir of ['schemas']) {
  for (const f of readdirSync(path.join(root, dir)).filter((n) => n.endsWith('.json'))) {
    mkdirSync(path.join(tmp, dir), { recursive: true });
    cpSync(path.join(root, dir, f), path.join(tmp, dir, f));
  }
}
writeFileSync(path.join(tmp, STAMP), `${hash}\n`);
rmSync(path.join(root, 'dist'), { recursive: true, force: true });
renameSync(tmp, path.join(root, 'dist'));
console.log(`build: dist/ compiled from sources ${hash.slice(0, 12)}`);
