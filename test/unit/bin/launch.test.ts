// test-pass: once
/**
 * bin/launch.js: `pgw` runs the compiled dist/ only while it was built from exactly the
 * sources in the tree; any edit, added or removed source falls back to the sources (tsx).
 * The build itself (scripts/build.mjs) runs in a copy of the runtime sources.
 */
import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { compiledEntry, NODE_FLAGS, sourceHash, SOURCE_DIRS, STAMP } from '../../../bin/launch.js';

const ROOT = path.resolve(import.meta.dirname, '../../..');

describe('bin/launch.js (compiled build or sources)', () => {
  let dir: string;

  beforeEach(async () => {
    dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'pgw-launch-'));
    await fsp.mkdir(path.join(dir, 'gateway', 'core'), { recursive: true });
    await fsp.writeFile(path.join(dir, 'gateway', 'cli.ts'), 'export {};\n');
    await fsp.writeFile(path.join(dir, 'gateway', 'core', 'a.ts'), 'export const a = 1;\n');
    await fsp.writeFile(path.join(dir, 'tsconfig.json'), '{}\n');
    await fsp.mkdir(path.join(dir, 'dist', 'gateway'), { recursive: true });
    await fsp.writeFile(path.join(dir, 'dist', 'gateway', 'cli.js'), 'export {};\n');
  });
  afterEach(async () => {
    await fsp.rm(dir, { recursive: true, force: true });
  });

  const stamp = (hash: string) => fsp.writeFile(path.join(dir, 'dist', STAMP), `${hash}\n`);

  it('runs dist/ when its stamp is the hash of the current sources', async () => {
    await stamp(sourceHash(dir));
    expect(compiledEntry(dir)).to.equal(path.join(dir, 'dist', 'gateway', 'cli.js'));
  });

  it('runs the sources after any source is edited, added or removed, or without a stamp', async () => {
    expect(compiledEntry(dir), 'no stamp').to.equal(null);
    const before = sourceHash(dir);
    await stamp(before);
    await fsp.writeFile(path.join(dir, 'gateway', 'core', 'a.ts'), 'export const a = 2;\n');
    expect(compiledEntry(dir), 'edited').to.equal(null);
    await fsp.writeFile(path.join(dir, 'gateway', 'core', 'a.ts'), 'export const a = 1;\n');
    expect(compiledEntry(dir), 'edited back').to.not.equal(null);
    await fsp.writeFile(path.join(dir, 'gateway', 'core', 'b.ts'), '');
    expect(compiledEntry(dir), 'added').to.equal(null);
    await fsp.rm(path.join(dir, 'gateway', 'core', 'b.ts'));
    await fsp.rename(path.join(dir, 'gateway', 'core', 'a.ts'), path.join(dir, 'gateway', 'core', 'c.ts'));
    expect(compiledEntry(dir), 'renamed').to.equal(null);
    await fsp.rename(path.join(dir, 'gateway', 'core', 'c.ts'), path.join(dir, 'gateway', 'core', 'a.ts'));
    await fsp.writeFile(path.join(dir, 'tsconfig.json'), '{"compilerOptions":{}}\n');
    expect(compiledEntry(dir), 'build settings changed').to.equal(null);
  });

  it('npm run build compiles the runtime into a stamped dist/ that bin/pgw.js then runs', async function () {
    this.timeout(120_000);
    // a copy of what the build reads, with node_modules linked
    for (const d of [...SOURCE_DIRS, 'bin', 'scripts']) await fsp.cp(path.join(ROOT, d), path.join(dir, d), { recursive: true });
    for (const f of ['tsconfig.json', 'tsconfig.build.json', 'package.json']) await fsp.copyFile(path.join(ROOT, f), path.join(dir, f));
    await fsp.rm(path.join(dir, 'dist'), { recursive: true });
    await fsp.symlink(path.join(ROOT, 'node_modules'), path.join(dir, 'node_modules'));
    execFileSync(process.execPath, [path.join(dir, 'scripts', 'build.mjs')], { stdio: 'pipe' });
    expect(compiledEntry(dir)).to.equal(path.join(dir, 'dist', 'gateway', 'cli.js'));
    await fsp.access(path.join(dir, 'dist', 'schemas', 'client-registration.v1.json')); // read beside the module
    // bin/pgw.js runs the compiled CLI (marked here: the stamp covers the sources, not dist/)
    const cli = path.join(dir, 'dist', 'gateway', 'cli.js');
    await fsp.writeFile(cli, `console.log("ran dist/");\n${await fsp.readFile(cli, 'utf8')}`);
    const out = execFileSync(process.execPath, [path.join(dir, 'bin', 'pgw.js'), '--help'], { encoding: 'utf8' });
    expect(out).to.include('ran dist/').and.to.include('start');
  });

  it('pgw starts with NODE_FLAGS however it is started: its shebang, npm start, and run as an executable', async () => {
    const shebang = (await fsp.readFile(path.join(ROOT, 'bin', 'pgw.js'), 'utf8')).split('\n')[0];
    expect(shebang).to.equal(`#!/usr/bin/env -S node ${NODE_FLAGS.join(' ')}`);
    const pkg = JSON.parse(await fsp.readFile(path.join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
    expect(pkg.scripts.start).to.equal(`node ${NODE_FLAGS.join(' ')} bin/pgw.js start`);
    // executed through its shebang, as an installed `pgw` is
    const out = execFileSync(path.join(ROOT, 'bin', 'pgw.js'), ['--help'], { encoding: 'utf8', env: { ...process.env, NODE_OPTIONS: '' } });
    expect(out).to.include('start');
    expect(NODE_FLAGS.length).to.be.above(0);
  });
});
