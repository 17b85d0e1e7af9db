// test-pass: once
import { expect } from 'chai';
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DirSync } from '../../../gateway/ingest/dir-sync.js';

describe('ingest: shared directory fsync (DirSync)', () => {
  let dir: string;
  beforeEach(async () => { dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'pgwds-')); });
  afterEach(async () => { await fsp.rm(dir, { recursive: true, force: true }); });

  it('callers that arrive while an fsync runs share the next one; a later caller gets its own', async () => {
    const d = new DirSync(dir);
    const first = d.sync();
    // These arrive while the first runs: their renames may have missed it, so they need the next.
    const waiting = Array.from({ length: 5 }, () => d.sync());
    expect(new Set(waiting).size, 'one shared fsync for all of them').to.equal(1);
    expect(waiting[0]).to.not.equal(first);
    await Promise.all([first, ...waiting]);
    expect(d.fsyncs).to.equal(2);
    await d.sync();
    expect(d.fsyncs).to.equal(3);
  });

  it('a failed fsync fails every caller that shared it; the next call tries again', async () => {
    const gone = path.join(dir, 'gone');
    const d = new DirSync(gone);
    const first = d.sync();
    const second = d.sync();
    const errs = await Promise.all([first, second].map((p) => p.then(() => null, (e: NodeJS.ErrnoException) => e.code)));
    expect(errs).to.deep.equal(['ENOENT', 'ENOENT']);
    await fsp.mkdir(gone);
    await d.sync();
    expect(d.fsyncs).to.equal(3);
  });
});
