import { expect } from 'chai';
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { Ledger } from '../../../../gateway/core/ledger/index.js';
import { silentLogger } from '../../../../gateway/core/logger.js';
import { newBatchId } from '../../../../gateway/ingest/ingest-service.js';
import { DATABASES, type TestDatabase } from '../../../helpers/databases.js';
import { Kysely, Migrator, PostgresDialect, SqliteDialect } from 'kysely';
import pg from 'pg';
import { InlineMigrations } from '../../../../gateway/core/ledger/migrations.js';

/** The audit chain key a process derives from its master key (any 32 bytes here). */
const AUDIT_KEY = randomBytes(32);

describe('ledger (SQLite): embedded settings', () => {
  it('runs in WAL mode with synchronous=FULL and is idempotent to reopen', async () => {
    const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'pgwl-'));
    const file = path.join(dir, 'ledger.db');
    await (await Ledger.open(`sqlite:${file}`, silentLogger)).close();
    await (await Ledger.open(`sqlite:${file}`, silentLogger)).close();
    const Database = (await import('better-sqlite3')).default;
    const db = new Database(file, { readonly: true });
    expect(db.pragma('journal_mode', { simple: true })).to.equal('wal');
    db.close();
    await fsp.rm(dir, { recursive: true, force: true });
  });
});

for (const [label, make] of DATABASES) describe(`ledger (${label})`, () => {
  let tdb: TestDatabase;
  let ledger: Ledger;
  before(async () => {
    tdb = await make();
    ledger = await Ledger.open(tdb.url, silentLogger);
    await ledger.audit.useKey(AUDIT_KEY);
    await ledger.partners.create({ id: 'p1', name: 'P1' });
  });
  after(async () => {
    await ledger?.close();
    await tdb?.drop();
  });

  const receive = (sha: string, lane: 'live' | 'test' = 'live') => ledger.batches.insertReceived({
    id: newBatchId(), partnerId: 'p1', channel: 'sftp', lane, fileName: 'a.json.pgp', sha256: sha, size: 10, receivedAt: new Date(), dataKey: 'v1.x',
  });

  it('migrates idempotently (a second open changes nothing)', async () => {
    await (await Ledger.open(tdb.url, silentLogger)).close();
    expect((await ledger.partners.list()).map((p) => p.id)).to.include('p1');
  });

  it('records the same bytes again as a duplicate of the first batch, per lane', async () => {
    const a = await receive('aa');
    const b = await receive('aa');
    const t = await receive('aa', 'test');
    expect(a.duplicateOf).to.equal(null);
    expect(b.duplicateOf).to.equal(a.batch.id);
    expect(b.batch).to.include({ stage: 'ack', outcome: 'rejected', error_code: 'batch.duplicate' });
    expect(t.duplicateOf, 'trying a file in the test lane first is normal').to.equal(null);
  });

  it('detects duplicates under concurrency: exactly one first batch', async () => {
    const results = await Promise.all(Array.from({ length: 20 }, () => receive('race')));
    expect(results.filter((r) => r.duplicateOf === null)).to.have.length(1);
  });

  it('moves a stage once: a second advance from the same stage loses', async () => {
    const { batch } = await receive('adv');
    const ev = { stage: 'decrypt', outcome: 'ok' as const };
    const [x, y] = await Promise.all([
      ledger.batches.advance(batch.id, 'decrypt', 'validate', {}, ev),
      ledger.batches.advance(batch.id, 'decrypt', 'validate', {}, ev),
    ]);
    expect([x, y].filter(Boolean)).to.have.length(1);
    expect((await ledger.batches.events(batch.id)).filter((e) => e.stage === 'decrypt')).to.have.length(1);
  });

  it('records an ack once and finishes the batch', async () => {
    const { batch } = await receive('ack');
    await ledger.batches.advance(batch.id, 'decrypt', 'ack', { outcome: 'rejected' }, { stage: 'decrypt', outcome: 'error' });
    const row = { batch_id: batch.id, version: 1, sha256: 's', outbox_name: 'a.json.pgp.ack.pgp', signed_by: 'g', encrypted_to: 'p', created_at: new Date().toISOString() };
    expect(await ledger.batches.recordAck(row)).to.equal(true);
    expect(await ledger.batches.recordAck(row)).to.equal(false);
    expect((await ledger.batches.get(batch.id))!.stage).to.equal('done');
    await ledger.batches.markAckDownloaded(batch.id, 1, 'sftp');
    await ledger.batches.markAckDownloaded(batch.id, 1, 'sftp');
    const ack = await ledger.batches.getAck(batch.id);
    expect(ack!.download_count).to.equal(2);
    expect((await ledger.batches.events(batch.id)).filter((e) => e.stage === 'ack-downloaded')).to.have.length(1);
  });

  it('chains audit events so that an edit or a removal is detected, naming the row', async () => {
    await ledger.audit.record('alice', 'partner.added', 'p1');
    await ledger.audit.record('bob', 'partner_key.added', 'p1', { fingerprint: 'ab' });
    await ledger.audit.record('carol', 'partner.disabled', 'p1');
    const intact = await ledger.audit.verify();
    expect(intact).to.include({ ok: true, events: 3, brokenAt: null });
    const bobSeq = Number((await ledger.audit.list({ actor: 'bob' }))[0]!.seq);
    await ledger.handle.db.updateTable('audit_events').set({ actor: 'mallory' }).where('actor', '=', 'bob').execute();
    expect(await ledger.audit.verify()).to.include({ ok: false, brokenAt: bobSeq, problem: 'edited' });
    await ledger.handle.db.updateTable('audit_events').set({ actor: 'bob' }).where('actor', '=', 'mallory').execute();
    expect((await ledger.audit.verify()).ok).to.equal(true);
    await ledger.handle.db.deleteFrom('audit_events').where('actor', '=', 'bob').execute();
    expect(await ledger.audit.verify()).to.include({ ok: false, brokenAt: bobSeq + 1, problem: 'predecessor_changed', lastGoodSeq: bobSeq - 1 });
  });

  it('audit events written concurrently (PostgreSQL: from two pools) still form one chain', async () => {
    const own = await make();
    // Two better-sqlite3 handles in ONE process would block each other synchronously (busy
    // timeout on the event loop); SQLite writers in different processes are serialised by
    // BEGIN IMMEDIATE. PostgreSQL is where two pools really race, so it gets two.
    const a = await Ledger.open(own.url, silentLogger);
    const b = label === 'PostgreSQL' ? await Ledger.open(own.url, silentLogger) : a;
    try {
      await a.audit.useKey(AUDIT_KEY);
      await b.audit.useKey(AUDIT_KEY);
      await Promise.all(Array.from({ length: 24 }, (_, i) => (i % 2 ? a : b).audit.record(`actor-${i}`, 'partner.added', `p${i}`)));
      expect(await a.audit.verify()).to.include({ ok: true, events: 24 });
    } finally {
      await a.close();
      await b.close(); // idempotent when b is a
      await own.drop();
    }
  });

  it('SSH key removal and the signer index used by revocation review', async () => {
    await ledger.partners.addSshKey({ partnerId: 'p1', fingerprint: 'SHA256:abc', algorithm: 'ssh-ed25519', publicKey: 'ssh-ed25519 AAAA', comment: null });
    expect(await ledger.partners.revokeSshKey('p1', 'SHA256:abc')).to.equal(true);
    expect(await ledger.partners.revokeSshKey('p1', 'SHA256:abc')).to.equal(false);
    expect(await ledger.partners.activeSshKeys('p1')).to.deep.equal([]);
    const { batch } = await receive('f'.repeat(64));
    await ledger.batches.advance(batch.id, 'decrypt', 'validate', { signer_fingerprint: 'sig1', signed_at: '2026-01-02T00:00:00.000Z' }, { stage: 'decrypt', outcome: 'ok' });
    expect((await ledger.pgpKeys.batchesSignedSince('sig1', new Date('2026-01-01T00:00:00Z'))).map((x) => x.id)).to.deep.equal([batch.id]);
    expect(await ledger.pgpKeys.batchesSignedSince('sig1', new Date('2026-01-03T00:00:00Z'))).to.deep.equal([]);
  });

  it('0011 puts the signer of earlier self-service submissions on the key row, where a revocation finds the pending ones', async () => {
    const own = await make();
    // The ledger as an earlier version left it: migrated up to 0008, the signer only in the audit event.
    const old = new Kysely<any>({ // the schema of 0008, not today's DB type
      dialect: own.name === 'sqlite'
        ? new SqliteDialect({ database: new (await import('better-sqlite3')).default(own.url.slice('sqlite:'.length)) })
        : new PostgresDialect({ pool: new pg.Pool({ connectionString: own.url }) }),
    });
    const iso = (ms: number) => new Date(Date.now() + ms).toISOString();
    const key = (fingerprint: string, notBefore: string) => ({
      fingerprint, owner: 'partner', partner_id: 'p1', key_fingerprints: '[]', algorithm: 'x', public_armored: '', private_armored: null,
      key_created_at: iso(-1e9), not_before: notBefore, not_after: null, revoked_at: null, revocation_reason: null, created_at: iso(-1e6),
    });
    const event = (seq: number, action: string, detail: string | null) => ({
      at: iso(0), actor: 'partner:p1', action, target: 'p1', detail, prev_hash: String(seq), hash: `h${seq}`,
    });
    try {
      const r = await new Migrator({ db: old, provider: new InlineMigrations(own.name === 'sqlite' ? 'sqlite' : 'postgres') }).migrateTo('0008_subject_index_parts');
      expect(r.error).to.equal(undefined);
      await old.insertInto('partners').values({ id: 'p1', name: 'P1', status: 'active', created_at: iso(0), updated_at: iso(0) }).execute();
      await old.insertInto('pgp_keys').values([key('old', iso(-1e9)), key('next', iso(3.6e6)), key('byhand', iso(3.6e6)), key('done', iso(-1e3))]).execute();
      await old.insertInto('audit_events').values([
        event(1, 'partner_key.submitted', JSON.stringify({ fingerprint: 'next', signedBy: 'old', channel: 'sftp' })),
        event(2, 'partner_key.submitted', JSON.stringify({ fingerprint: 'done', signedBy: 'old', channel: 'https' })),
        event(3, 'partner_key.submitted', '{not json'),
        event(4, 'partner_key.added', JSON.stringify({ fingerprint: 'byhand', signedBy: 'old' })),
        event(5, 'partner_key.submitted', JSON.stringify({ fingerprint: 'gone', signedBy: 'old' })),
      ]).execute();
    } finally {
      await old.destroy();
    }
    const l2 = await Ledger.open(own.url, silentLogger);
    try {
      expect((await l2.pgpKeys.get('next'))!.signed_by).to.equal('old');
      expect((await l2.pgpKeys.get('done'))!.signed_by).to.equal('old');
      expect((await l2.pgpKeys.get('byhand'))!.signed_by).to.equal(null);
      expect((await l2.pgpKeys.pendingSignedBy('old', new Date())).map((k) => k.fingerprint)).to.deep.equal(['next']);
      expect((await l2.pgpKeys.activeSignedBySince('old', new Date(Date.now() - 3.6e6), new Date())).map((k) => k.fingerprint)).to.deep.equal(['done']);
    } finally {
      await l2.close();
      await own.drop();
    }
  });

  it('detects the newest audit event deleted once a later one is appended', async () => {
    // A database of its own: the test above leaves its chain broken on purpose.
    const own = await make();
    const l2 = await Ledger.open(own.url, silentLogger);
    try {
      await l2.audit.useKey(AUDIT_KEY);
      await l2.audit.record('alice', 'partner.added', 'p1');
      await l2.audit.record('bob', 'partner_key.revoked', 'p1');
      const last = Number((await l2.audit.list({ limit: 1 }))[0]!.seq);
      await l2.handle.db.deleteFrom('audit_events').where('seq', '=', last).execute();
      expect((await l2.audit.verify()).ok).to.equal(true); // a shorter chain is still a chain
      await l2.audit.record('carol', 'partner.disabled', 'p1');
      expect(await l2.audit.verify()).to.include({ ok: false, brokenAt: last + 1, problem: 'gap' });
    } finally {
      await l2.close();
      await own.drop();
    }
  });

  // The identity as the keyed hash: the index entries are the BSN blocks themselves.
  const asIs = (blocks: Buffer) => Buffer.from(blocks);
  const block = (bsn: string) => Buffer.concat([Buffer.from(bsn, 'latin1'), Buffer.alloc(7)]);

  it('finds every record of a hash across parts, also among hashes sharing their first bytes, and in old rows', async () => {
    const id = (await receive(randomBytes(32).toString('hex'))).batch.id;
    const w = ledger.subjects.writer(id, asIs);
    // 123400001 and 123400002 share their first 4 bytes (the native sort key); 70,000 entries make two parts
    for (let i = 0; i < 70_000; i++) w.add(i, i === 7 || i === 66_000 ? '123400002' : i === 3 ? '123400001' : String(200_000_000 + i));
    await w.flush();
    w.add(70_000, '123400001');
    await w.finish();
    expect(await ledger.subjects.find([block('123400002')])).to.deep.equal([{ batch_id: id, record: 7 }, { batch_id: id, record: 66_000 }]);
    expect(await ledger.subjects.find([block('123400001')])).to.deep.equal([{ batch_id: id, record: 3 }, { batch_id: id, record: 70_000 }]);
    expect(await ledger.subjects.find([block('200069999')])).to.deep.equal([{ batch_id: id, record: 69_999 }]);
    // an entry written before the AES form (an HMAC prefix): found under the second lookup hash
    const old = (await receive(randomBytes(32).toString('hex'))).batch.id;
    const hmac = randomBytes(16);
    const legacy = ledger.subjects.writer(old, (blocks) => Buffer.concat([hmac, randomBytes(blocks.length - 16)]));
    legacy.add(5, '999999999');
    legacy.add(6, '999999999');
    await legacy.finish();
    const both = [block('123400002'), hmac];
    expect(await ledger.subjects.find(both)).to.deep.equal([
      ...[[{ batch_id: id, record: 7 }, { batch_id: id, record: 66_000 }], [{ batch_id: old, record: 5 }]].sort((x, y) => x[0]!.batch_id.localeCompare(y[0]!.batch_id)).flat(),
    ]);
    await ledger.subjects.remove(both, id);
    await ledger.subjects.remove(both, old);
    expect(await ledger.subjects.find(both)).to.deep.equal([]);
    expect(await ledger.subjects.find([block('123400001')])).to.have.length(2);
    // a rerun replaces the batch's parts; a rejected batch keeps none
    const again = ledger.subjects.writer(id, asIs);
    again.add(1, '123400001');
    await again.finish();
    expect(await ledger.subjects.find([block('123400001')])).to.deep.equal([{ batch_id: id, record: 1 }]);
    await ledger.subjects.writer(id, asIs).discard();
    expect(await ledger.subjects.find([block('123400001')])).to.deep.equal([]);
  });

});
