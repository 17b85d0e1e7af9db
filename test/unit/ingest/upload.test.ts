// test-pass: once
import { expect } from 'chai';
import { createHash, randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Upload } from '../../../gateway/ingest/upload.js';
import { SYNC_BEHIND_BYTES } from '../../../gateway/core/sync-behind.js';
import { PgwError } from '../../../gateway/core/errors.js';

describe('upload', () => {
  let dir: string;
  before(async () => { dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'pgwu-')); });
  after(async () => { await fsp.rm(dir, { recursive: true, force: true }); });

  it('hashes pipelined in-order writes on the fly', async () => {
    const data = randomBytes(300_000);
    const u = await Upload.open(path.join(dir, 'a'), 1e6);
    await Promise.all(Array.from({ length: 10 }, (_, i) => u.write(i * 30_000, data.subarray(i * 30_000, (i + 1) * 30_000))));
    const r = await u.seal();
    expect(r).to.deep.equal({ sha256: createHash('sha256').update(data).digest('hex'), size: data.length });
  });

  it('gets the digest right for out-of-order and overlapping writes', async () => {
    const data = randomBytes(100_000);
    const u = await Upload.open(path.join(dir, 'b'), 1e6);
    await u.write(50_000, data.subarray(50_000));
    await u.write(0, data.subarray(0, 60_000));
    const r = await u.seal();
    expect(r.sha256).to.equal(createHash('sha256').update(data).digest('hex'));
  });

  it('flushes a big upload to disk behind its writes, and still hashes it right', async () => {
    const piece = randomBytes(255 * 1024);
    const pieces = Math.ceil((2.5 * SYNC_BEHIND_BYTES) / piece.length);
    const u = await Upload.open(path.join(dir, 'big'), 1e9);
    const h = createHash('sha256');
    for (let i = 0; i < pieces; i++) {
      await u.write(i * piece.length, piece);
      h.update(piece);
    }
    expect(u.syncBehind.started, 'a flush per 16 MiB written, one at a time').to.be.within(1, 2);
    expect(await u.seal()).to.deep.equal({ sha256: h.digest('hex'), size: pieces * piece.length });
  });

  it('fails the commit when a background flush failed, and closes the file', async () => {
    // An I/O error cannot be had from a real disk on demand: the handle's fdatasync is made to
    // fail the way the kernel reports a lost writeback (EIO, once).
    const probe = await fsp.open(path.join(dir, 'probe'), 'w');
    const proto = Object.getPrototypeOf(probe) as { datasync: () => Promise<void> };
    await probe.close();
    const original = proto.datasync;
    proto.datasync = () => Promise.reject(Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' }));
    const file = path.join(dir, 'eio');
    const openOnFile = async () => {
      let n = 0;
      for (const fd of await fsp.readdir('/proc/self/fd')) if ((await fsp.readlink(`/proc/self/fd/${fd}`).catch(() => '')) === file) n++;
      return n;
    };
    try {
      const u = await Upload.open(file, 1e9);
      const piece = Buffer.alloc(1024 * 1024, 1);
      for (let i = 0; i * piece.length <= SYNC_BEHIND_BYTES; i++) await u.write(i * piece.length, piece);
      expect(u.syncBehind.started).to.equal(1);
      const err = await u.seal().catch((e: unknown) => e);
      expect((err as NodeJS.ErrnoException).code).to.equal('EIO');
      expect(await openOnFile(), 'the handle is closed although the commit failed').to.equal(0);
      await u.abort();
      expect(await fsp.stat(file).catch(() => null)).to.equal(null);
    } finally {
      proto.datasync = original;
    }
  });

  it('refuses to seal an upload one of whose writes failed (the hash already counted those bytes)', async () => {
    // A full disk cannot be had on demand here (test/faults/disk-full.test.ts has a real one):
    // the handle's write fails once the way the kernel reports it (ENOSPC).
    const probe = await fsp.open(path.join(dir, 'probe-w'), 'w');
    const proto = Object.getPrototypeOf(probe) as { write: (...a: unknown[]) => Promise<unknown> };
    await probe.close();
    const original = proto.write;
    const u = await Upload.open(path.join(dir, 'nospace'), 1e6);
    await u.write(0, Buffer.alloc(4096, 1));
    proto.write = () => Promise.reject(Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' }));
    try {
      const e1 = await u.write(4096, Buffer.alloc(4096, 2)).catch((e: unknown) => e);
      expect((e1 as NodeJS.ErrnoException).code).to.equal('ENOSPC');
    } finally {
      proto.write = original;
    }
    const e2 = await u.seal().catch((e: unknown) => e);
    expect((e2 as PgwError).code, 'no digest of bytes that are not on disk').to.equal('upload.storage_failed');
    await u.abort();
    expect(await fsp.stat(path.join(dir, 'nospace')).catch(() => null)).to.equal(null);
  });

  it('reports the size on disk: contiguous writes, and a resumed upload', async () => {
    const file = path.join(dir, 'resume');
    const u = await Upload.open(file, 1e6);
    await u.write(0, Buffer.alloc(5000, 3));
    expect((await u.seal()).size).to.equal(5000);
    const v = await Upload.open(file, 1e6, true);
    await v.write(5000, Buffer.alloc(1000, 4));
    const r = await v.seal();
    expect(r).to.deep.equal({ size: 6000, sha256: createHash('sha256').update(await fsp.readFile(file)).digest('hex') });
    expect((await fsp.stat(file)).size).to.equal(6000);
  });

  it('enforces the size limit on every write and refuses sparse offsets', async () => {
    const u = await Upload.open(path.join(dir, 'c'), 1000);
    await u.write(0, Buffer.alloc(1000));
    const e1 = await u.write(1000, Buffer.alloc(1)).catch((e: unknown) => e);
    expect((e1 as PgwError).code).to.equal('limits.upload_size');
    await u.abort();
    expect(await fsp.stat(path.join(dir, 'c')).catch(() => null), 'aborted upload leaves nothing').to.equal(null);
    const v = await Upload.open(path.join(dir, 'd'), 1000);
    const e2 = await v.write(2 ** 40, Buffer.alloc(1)).catch((e: unknown) => e);
    expect((e2 as PgwError).code).to.equal('limits.sparse_write');
    await v.abort();
  });
});
