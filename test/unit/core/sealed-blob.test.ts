// test-pass: once
import { expect } from 'chai';
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createHmac, randomBytes } from 'node:crypto';
import { SYNC_BEHIND_BYTES } from '../../../gateway/core/sync-behind.js';
import { DataKeys, SUBJECT_BLOCK_BYTES, SealedWriter, writeSubjectBlock, deriveMasterKey, readSealedAll, writeSealed, loadOrCreateSalt } from '../../../gateway/core/sealed-blob.js';

describe('sealed blobs (encryption at rest)', () => {
  let dir: string;
  const keys = new DataKeys(deriveMasterKey('test passphrase', Buffer.alloc(16, 1)));
  before(async () => { dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'pgws-')); });
  after(async () => { await fsp.rm(dir, { recursive: true, force: true }); });

  it('round-trips data of many sizes, written in odd pieces', async () => {
    for (const size of [0, 1, 1024 * 1024, 1024 * 1024 + 1, 3 * 1024 * 1024 + 17]) {
      const { key } = keys.create();
      const data = randomBytes(size);
      const w = await SealedWriter.create(path.join(dir, `s${size}`), key);
      for (let i = 0; i < size; i += 7919) await w.write(data.subarray(i, i + 7919));
      await w.finish();
      expect((await readSealedAll(path.join(dir, `s${size}`), key)).equals(data)).to.equal(true);
    }
  });

  it('flushes a big sealed file to disk behind its writes, and reads back the same', async () => {
    const { key } = keys.create();
    const data = randomBytes(2.5 * SYNC_BEHIND_BYTES);
    const f = path.join(dir, 'big');
    const w = await SealedWriter.create(f, key);
    for (let i = 0; i < data.length; i += 300_007) await w.write(data.subarray(i, i + 300_007));
    await w.finish();
    expect(w.syncBehind.started, 'a flush per 16 MiB written, one at a time').to.be.within(1, 2);
    expect((await readSealedAll(f, key)).equals(data)).to.equal(true);
  });

  it('stores no plaintext and is mode 0600', async () => {
    const { key } = keys.create();
    const f = path.join(dir, 'plain');
    await writeSealed(f, key, Buffer.from('BSN 123456782 and Testvoornaam'));
    expect((await fsp.readFile(f)).toString('latin1')).not.to.include('123456782');
    expect((await fsp.stat(f)).mode & 0o777).to.equal(0o600);
  });

  it('detects a flipped bit, truncation, appended data and a wrong key', async () => {
    const { key } = keys.create();
    const f = path.join(dir, 'tamper');
    await writeSealed(f, key, randomBytes(2 * 1024 * 1024 + 5));
    const good = await fsp.readFile(f);
    const variants: Buffer[] = [];
    const flipped = Buffer.from(good); flipped[good.length - 40]! ^= 1; variants.push(flipped);
    variants.push(good.subarray(0, good.length - 100));
    // Dropping the whole last chunk leaves a well-formed prefix whose last chunk is not marked final.
    variants.push(good.subarray(0, 13 + 4 + 1024 * 1024 + 16));
    variants.push(Buffer.concat([good, Buffer.from('junk')]));
    for (const v of variants) {
      await fsp.writeFile(f, v);
      let failed = false;
      await readSealedAll(f, key).catch(() => { failed = true; });
      expect(failed).to.equal(true);
    }
    await fsp.writeFile(f, good);
    let failed = false;
    await readSealedAll(f, keys.create().key).catch(() => { failed = true; });
    expect(failed, 'wrong key').to.equal(true);
  });

  it('wraps data keys so only the master key unwraps them', async () => {
    const { key, wrapped } = keys.create();
    expect(keys.unwrap(wrapped).equals(key)).to.equal(true);
    const other = new DataKeys(deriveMasterKey('another passphrase', Buffer.alloc(16, 1)));
    expect(() => other.unwrap(wrapped)).to.throw();
  });

  it('keeps one salt per data dir', async () => {
    const a = await loadOrCreateSalt(dir);
    const b = await loadOrCreateSalt(dir);
    expect(a.equals(b)).to.equal(true);
  });
});

describe('subject hashes (DataKeys)', () => {
  const keys = new DataKeys(randomBytes(32));

  it('hashes a whole batch of BSN blocks in one call exactly as one by one', () => {
    const bsns = ['123456782', '111222333', '123456782', '999999999'];
    const blocks = Buffer.alloc(bsns.length * SUBJECT_BLOCK_BYTES);
    bsns.forEach((b, i) => writeSubjectBlock(blocks, i * SUBJECT_BLOCK_BYTES, b));
    const all = keys.subjectHashBlocks(blocks);
    bsns.forEach((b, i) => expect(all.subarray(i * 16, i * 16 + 16).equals(keys.subjectHash(b))).to.equal(true));
    expect(keys.subjectHash('123456782').equals(keys.subjectHash('111222333'))).to.equal(false);
    // keyed: another master key gives another hash
    expect(new DataKeys(randomBytes(32)).subjectHash('123456782').equals(keys.subjectHash('123456782'))).to.equal(false);
  });

  it('looks a BSN up under the current hash and the HMAC of older index rows', () => {
    const master = randomBytes(32);
    const k = new DataKeys(master);
    const v1 = createHmac('sha256', createHmac('sha256', master).update('pgw-subject-index-v1').digest()).update('123456782').digest();
    const [now, legacy] = k.subjectLookupHashes('123456782');
    expect(now!.equals(k.subjectHash('123456782'))).to.equal(true);
    expect(legacy!.equals(v1)).to.equal(true);
  });

  it('refuses anything but 9 digits', () => {
    expect(() => keys.subjectHash('12345678')).to.throw();
    expect(() => keys.subjectHash('12345678x')).to.throw();
  });
});
