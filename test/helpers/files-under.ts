import { promises as fsp } from 'node:fs';
import path from 'node:path';

/** Every regular file under `dir` (symlinks not followed; a missing dir is empty); `skip` prunes directories and files. */
export async function filesUnder(dir: string, skip: (p: string) => boolean = () => false): Promise<string[]> {
  const out: string[] = [];
  for (const e of await fsp.readdir(dir, { withFileTypes: true }).catch(() => [])) {
    const p = path.join(dir, e.name);
    if (skip(p)) continue;
    if (e.isDirectory()) out.push(...(await filesUnder(p, skip)));
    else if (e.isFile()) out.push(p);
  }
  return out;
}
