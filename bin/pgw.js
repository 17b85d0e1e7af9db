#!/usr/bin/env -S node --initial-old-space-size=80 --max-semi-space-size=8
// The `pgw` executable: the compiled build when it matches the sources (bin/launch.js),
// else the TypeScript sources through tsx (no build step needed). The shebang's flags are
// NODE_FLAGS of bin/launch.js (a test keeps them equal).
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { compiledEntry } from './launch.js';

const compiled = compiledEntry(path.resolve(import.meta.dirname, '..'));
if (compiled) {
  await import(pathToFileURL(compiled).href);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import('../gateway/cli.ts');
}
