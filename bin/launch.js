// Which code `pgw` runs: the compiled JavaScript in dist/ (made by `npm run build`, which
// `npm ci` runs) when it was built from exactly the sources in this tree, else the
// TypeScript sources through tsx. Compiled, a process starts faster and holds ~55 MiB less
// (no transpiler thread, no transpiled-source caches: bench/RESULTS.md §4); the hash check
// means an edited source is never shadowed by an older build.
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

/**
 * Node flags `pgw` starts with (the shebang of bin/pgw.js and `npm start` carry them; V8 reads
 * them only at start-up): a first old-space limit of 80 MB and semi-spaces of 8 MB (V8's
 * default grows them to 16). ssh2 allocates a buffer per SSH packet and one per SFTP request,
 * ~2 bytes per byte uploaded, freed by scavenges; V8 counts the external memory allocated
 * since the last full collection against the old-space limit and starts marking once less
 * than a new space's capacity is left. With V8's small default limit the gateway ran a full
 * collection every ~16 MiB uploaded; at 64 MB with 16 MB semi-spaces it still did, every
 * ~50 ms of a big upload, in a process whose last full collection fell at a low point of
 * that churn or that had sat idle for a while (512 MiB at ~350 instead of ~500 MB/s).
 * Measured (bench/RESULTS.md §1, §4): none of 8 such processes collected during a 512 MiB
 * upload with these flags, and the worker's peak with a 1 GiB batch was 234 MiB (232 before; an
 * old space of 96 MB took it to 254, too near the 256 MiB bound).
 */
export const NODE_FLAGS = ['--initial-old-space-size=80', '--max-semi-space-size=8'];

/** The directories whose files make up the runtime (everything `dist/` is built from). */
export const SOURCE_DIRS = ['gateway', 'workers', 'keys', 'schemas'];
/** Files beside the sources that change what the build makes. */
const BUILD_FILES = ['tsconfig.json', 'tsconfig.build.json', 'package.json'];
export const STAMP = '.source-hash';

function listFiles(dir, out) {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) listFiles(p, out);
    else if (e.isFile()) out.push(p);
  }
  return out;
}

/** SHA-256 over every source file's relative path and content, in a fixed order. */
export function sourceHash(root) {
  const files = [];
  for (const d of SOURCE_DIRS) if (existsSync(path.join(root, d))) listFiles(path.join(root, d), files);
  for (const f of BUILD_FILES) if (existsSync(path.join(root, f))) files.push(path.join(root, f));
  const h = createHash('sha256');
  for (const f of files.map((f) => path.relative(root, f).split(path.sep).join('/')).sort()) {
    h.update(f).update('\0').update(readFileSync(path.join(root, f))).update('\0');
  }
  return h.digest('hex');
}

/** `dist/gateway/cli.js` when dist/ was built from these sources, else null (run the sources). */
export function compiledEntry(root) {
  const entry = path.join(root, 'dist', 'gateway', 'cli.js');
  let stamp;
  try {
    stamp = readFileSync(path.join(root, 'dist', STAMP), 'utf8').trim();
  } catch {
    return null;
  }
  return existsSync(entry) && stamp === sourceHash(root) ? entry : null;
}
