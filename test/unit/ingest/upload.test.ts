import { expect } from 'chai';
import { createHash, randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Upload } from '../../../gateway/ingest/upload.js';
import { classifyUploadName, ackFileName, isAckFileName } from '../../../gateway/ingest/file-names.js';
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

describe('upload file names', () => {
  it('accepts ordinary final and temp names', () => {
    expect(classifyUploadName('export-2026-11-25.json.pgp')).to.equal('final');
    expect(classifyUploadName('X_1.csv.GPG')).to.equal('final');
    expect(classifyUploadName('a.asc')).to.equal('final');
    expect(classifyUploadName('a.json.pgp.filepart')).to.equal('temp');
    expect(classifyUploadName('.a.json.pgp')).to.equal('temp');
    expect(classifyUploadName('.a.json.pgp.Xy12Ab')).to.equal('temp');
    expect(isAckFileName('a.json.pgp.ack.pgp')).to.equal(true);
    expect(isAckFileName(ackFileName('a.json.pgp', 'b-20261125-abcdefghijkm'))).to.equal(true);
    expect(isAckFileName('a.json.ack.pgp')).to.equal(false);
    expect(isAckFileName('.a.json.pgp.ack.pgp')).to.equal(false);
    expect(ackFileName('a.json.pgp')).to.equal('a.json.pgp.ack.pgp');
  });

  it('refuses traversal, odd characters and wrong extensions', () => {
    for (const bad of ['../x.pgp', '..\\x.pgp', 'a/b.pgp', 'x..pgp', '.', '..', '', 'x.pgp ', 'x.pgp.', 'ｘ.pgp', 'x\u0000.pgp',
      'a\r\n.pgp', '${7*7}.pgp', '{{7*7}}.pgp', 'x.json', 'package.json', '.env', 'notes.txt.filepart', '.bashrc', 'autorun.xml', '-rf.pgp', 'x'.repeat(4096) + '.pgp']) {
      expect(() => classifyUploadName(bad), JSON.stringify(bad.slice(0, 20))).to.throw(PgwError);
    }
  });
});
