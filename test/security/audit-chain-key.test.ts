/**
 * The audit chain is keyed: an event's hash is an HMAC under a key derived
 * from the master key, so someone with write access to the database alone cannot edit an
 * event and rebuild the chain after it — which against a plain SHA-256 chain takes nothing
 * but the formula. Chains written before keying still verify; events after the switch are
 * keyed; `pgw audit verify` says which part is which.
 */
import { expect } from 'chai';
import { createHash, createHmac, hkdfSync, randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Kysely } from 'kysely';
import { Ledger } from '../../gateway/core/ledger/index.js';
import type { DB } from '../../gateway/core/ledger/schema.js';
import { silentLogger } from '../../gateway/core/logger.js';
import { DataKeys } from '../../gateway/core/sealed-blob.js';
import { DATABASES, suiteDatabase, type TestDatabase } from '../helpers/databases.js';
import { codeOf } from '../helpers/expect-code.js';
import { runPgw } from '../helpers/pgw-cli.js';

const GENESIS = '0'.repeat(64);
const plain = (prev: string, e: { at: string; actor: string; action: string; target: string; detail: string | null }) =>
  createHash('sha256').update(JSON.stringify([prev, e.at, e.actor, e.action, e.target, e.detail])).digest('hex');

/**
 * What an attacker with only the database does: change event `seq`, then recompute the
 * plain SHA-256 chain from it to the end (the formula is in the source). `downgrade` also
 * marks the rewritten events as plain ones.
 */
async function editAndRechain(db: Kysely<DB>, seq: number, actor: string, downgrade = false): Promise<void> {
  const rows = await db.selectFrom('audit_events').selectAll().orderBy('seq').execute();
  let prev = GENESIS;
  for (const r of rows) {
    if (Number(r.seq) < seq) {
      prev = r.hash;
      continue;
    }
    const e = { ...r, actor: Number(r.seq) === seq ? actor : r.actor };
    const hash = plain(prev, e);
    await db.updateTable('audit_events').set({ actor: e.actor, prev_hash: prev, hash, ...(downgrade ? { alg: 'sha256' } : {}) })
      .where('seq', '=', r.seq).execute();
    prev = hash;
  }
}

describe('audit chain keyed with a key derived from the master key (pgw audit verify)', function () {
  this.timeout(180_000);
  let dir: string;
  let database: TestDatabase;
  let env: Record<string, string>;
  const pgw = (args: string[], extra: Record<string, string> = {}) => runPgw(args, { ...env, ...extra });

  before(async () => {
    dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'pgwaudk-'));
    database = await suiteDatabase(path.join(dir, 'var', 'ledger.db'));
    env = { PGW_DATA_DIR: path.join(dir, 'var'), PGW_KEY_PASSPHRASE: 'audit chain passphrase', PGW_DATABASE_URL: database.url };
    expect((await pgw(['init'])).code).to.equal(0);
    for (const args of [['partner', 'add', 'kz-a', '--name', 'A'], ['partner', 'add', 'kz-b', '--name', 'B'], ['partner', 'disable', 'kz-a']]) {
      const r = await pgw(args);
      expect(r.code, r.stderr).to.equal(0);
    }
  });
  after(async () => {
    await database?.drop();
    await fsp.rm(dir, { recursive: true, force: true });
  });

  const tamper = async (fn: (db: Kysely<DB>) => Promise<void>) => {
    const l = await Ledger.open(database.url, silentLogger); // no key: the attacker has none
    try {
      await fn(l.handle.db);
    } finally {
      await l.close();
    }
  };

  it('a command without the passphrase, or with a wrong one, is refused before it changes anything', async () => {
    const before = JSON.parse((await pgw(['audit', 'list', '--json'])).stdout) as unknown[];
    const none = await pgw(['partner', 'add', 'kz-x', '--name', 'X'], { PGW_KEY_PASSPHRASE: '' });
    expect(none.stderr).to.match(/^pgw: key\.passphrase_missing/);
    const wrong = await pgw(['partner', 'add', 'kz-x', '--name', 'X'], { PGW_KEY_PASSPHRASE: 'not the passphrase' });
    expect(wrong.stderr).to.match(/^pgw: key\.passphrase_wrong/);
    expect(JSON.parse((await pgw(['partner', 'list', '--json'])).stdout).map((p: { id: string }) => p.id)).to.not.include('kz-x');
    expect(JSON.parse((await pgw(['audit', 'list', '--json'])).stdout)).to.deep.equal(before);
  });

  it('pgw audit verify says the chain is keyed', async () => {
    const ok = await pgw(['audit', 'verify']);
    expect(ok.code, ok.stderr).to.equal(0);
    expect(ok.stdout).to.match(/^ok: 4 audit events, chain intact \(keyed \(HMAC\) throughout\)/);
  });

  it('an event edited and the chain recomputed with plain SHA-256 is reported broken at that event', async () => {
    expect((await pgw(['audit', 'verify'])).code).to.equal(0);
    // Two more events after the anchor the verification just kept (an edit before the anchor
    // is caught by the anchor alone, keyed or not).
    expect((await pgw(['partner', 'add', 'kz-c', '--name', 'C'])).code).to.equal(0);
    expect((await pgw(['partner', 'enable', 'kz-a'])).code).to.equal(0);
    const events = JSON.parse((await pgw(['audit', 'list', '--json'])).stdout) as { seq: number; action: string; target: string }[];
    const seq = events.find((e) => e.action === 'partner.added' && e.target === 'kz-c')!.seq;
    await tamper((db) => editAndRechain(db, seq, 'cli:somebody-else'));
    const r = await pgw(['audit', 'verify']);
    expect(r.code, 'the re-chained log must not verify').to.not.equal(0);
    expect(r.stderr.trim()).to.match(new RegExp(`^pgw: audit\\.broken: audit chain broken at event ${seq}: its content does not match its hash \\(edited\\)`));
  });
});

for (const [label, make] of DATABASES) describe(`audit chain key (${label})`, () => {
  let tdb: TestDatabase;
  let ledger: Ledger;
  const master = randomBytes(32);
  let key: Buffer;

  beforeEach(async () => {
    key = new DataKeys(master).auditChainKey();
    tdb = await make();
    ledger = await Ledger.open(tdb.url, silentLogger);
  });
  afterEach(async () => {
    await ledger?.close();
    await tdb?.drop();
  });

  const record4 = async () => {
    for (const a of ['alice', 'bob', 'carol', 'dave']) await ledger.audit.record(a, 'partner.added', `p-${a}`, { n: a.length });
  };

  it('the key is HKDF of the master key under its own label, never the master key itself', async () => {
    expect(key.equals(Buffer.from(hkdfSync('sha256', master, Buffer.alloc(0), 'pgw audit chain v1', 32)))).to.equal(true);
    expect(key.equals(master)).to.equal(false);
    await ledger.audit.useKey(key);
    await ledger.audit.record('alice', 'partner.added', 'p1');
    const [e] = await ledger.audit.list(1);
    expect(e).to.include({ alg: 'hmac-sha256', hash: createHmac('sha256', key).update(JSON.stringify([GENESIS, e!.at, 'alice', 'partner.added', 'p1', null])).digest('hex') });
  });

  it('an edit re-chained with plain SHA-256 is "edited"; also marking the events plain is "unkeyed"', async () => {
    await ledger.audit.useKey(key);
    await record4();
    expect(await ledger.audit.verify()).to.include({ ok: true, events: 4, keyedFrom: 1 });
    await editAndRechain(ledger.handle.db, 2, 'mallory');
    expect(await ledger.audit.verify()).to.include({ ok: false, brokenAt: 2, problem: 'edited', lastGoodSeq: 1 });
    await editAndRechain(ledger.handle.db, 2, 'mallory', true);
    expect(await ledger.audit.verify()).to.include({ ok: false, brokenAt: 2, problem: 'unkeyed', lastGoodSeq: 1 });
  });

  it('a chain written before keying still verifies, events after it are keyed, and an edit of the plain part is caught at the switch', async () => {
    // Three events as earlier versions wrote them: plain SHA-256, no algorithm recorded.
    let prev = GENESIS;
    for (const actor of ['old-1', 'old-2', 'old-3']) {
      const e = { at: new Date().toISOString(), actor, action: 'partner.added', target: actor, detail: null };
      const hash = plain(prev, e);
      await ledger.handle.db.insertInto('audit_events').values({ ...e, prev_hash: prev, hash } as never).execute();
      prev = hash;
    }
    expect(await ledger.audit.verify()).to.include({ ok: true, events: 3, keyedFrom: null });
    await ledger.audit.useKey(key);
    await ledger.audit.record('new-4', 'partner.added', 'p4');
    await ledger.audit.record('new-5', 'partner.added', 'p5');
    expect(await ledger.audit.verify()).to.include({ ok: true, events: 5, keyedFrom: 4 });
    expect((await ledger.audit.list(5)).map((e) => e.alg)).to.deep.equal(['hmac-sha256', 'hmac-sha256', 'sha256', 'sha256', 'sha256']);
    // Editing a plain event and re-chaining through the keyed part cannot be hidden.
    await editAndRechain(ledger.handle.db, 2, 'mallory');
    expect(await ledger.audit.verify()).to.include({ ok: false, brokenAt: 4, problem: 'edited', lastGoodSeq: 3 });
  });

  it('no key: nothing is recorded and a keyed chain is not judged; another key is refused', async () => {
    expect(await codeOf(ledger.audit.record('alice', 'partner.added', 'p1'))).to.equal('audit.key_missing');
    expect(await ledger.audit.list(10)).to.deep.equal([]);
    await ledger.audit.useKey(key);
    await ledger.audit.record('alice', 'partner.added', 'p1');
    const other = await Ledger.open(tdb.url, silentLogger);
    try {
      expect(await codeOf(other.audit.verify())).to.equal('audit.key_missing');
      expect(await codeOf(other.audit.useKey(randomBytes(32)))).to.equal('audit.key_mismatch');
      expect(await codeOf(other.audit.record('mallory', 'partner.added', 'p2'))).to.equal('audit.key_missing');
      await other.audit.useKey(key); // the same secrets in another process
      expect(await other.audit.verify()).to.include({ ok: true, events: 1 });
    } finally {
      await other.close();
    }
  });
});
