/**
 * The ledger as the meeting point of several processes: migrations run once when
 * processes start together, leases elect one leader, and the guards that refuse unsafe
 * layouts (SQLite on a network file system, a data dir paired with another ledger).
 */
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Ledger } from '../../../gateway/core/ledger/index.js';
import { silentLogger } from '../../../gateway/core/logger.js';
import { isPgwError } from '../../../gateway/core/errors.js';
import { pairDataDirWithLedger, sharedFilesystem } from '../../../gateway/core/ledger/installation.js';
import { DATABASES, type TestDatabase } from '../../helpers/databases.js';

const run = promisify(execFile);
const OPENER = path.resolve(import.meta.dirname, '../../helpers/open-ledger.ts');
/** python3 -c: open the SQLite file (WAL), take the write lock, hold it argv[2] ms. */
const HOLD_SQLITE_LOCK = `
import sqlite3, sys, time
c = sqlite3.connect(sys.argv[1], isolation_level=None)
c.execute('pragma journal_mode=wal')
c.execute('begin immediate')
time.sleep(int(sys.argv[2]) / 1000)
c.execute('commit')
`;

for (const [label, make] of DATABASES) describe(`several processes on one ledger (${label})`, function () {
  this.timeout(120_000);
  let tdb: TestDatabase;
  beforeEach(async () => { tdb = await make(); });
  afterEach(async () => { await tdb?.drop(); });

  it('six processes starting together on a fresh ledger apply each migration exactly once, and all start', async () => {
    const at = String(Date.now() + 4000);
    // On SQLite another process holds the write lock over the moment they all start, so
    // that they queue up on it and then interleave statement by statement: without one
    // transaction around the migrations, two of them create the same table.
    const holder = tdb.name === 'sqlite'
      ? run('python3', ['-c', HOLD_SQLITE_LOCK, tdb.url.slice('sqlite:'.length), String(Number(at) - Date.now() + 1500)])
      : Promise.resolve();
    const outs = await Promise.all(Array.from({ length: 6 }, () => run(process.execPath, ['--import', 'tsx', OPENER, tdb.url, at], { timeout: 60_000 })));
    await holder;
    const applied = outs.flatMap((o) => o.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { message: string; migration?: string }))
      .filter((l) => l.message === 'ledger migration applied').map((l) => l.migration!);
    const l = await Ledger.open(tdb.url, silentLogger);
    try {
      const names = (await l.handle.db.selectFrom('kysely_migration' as never).select('name' as never).execute() as { name: string }[]).map((r) => r.name);
      expect(applied.sort()).to.deep.equal([...names].sort());
      expect(new Set(applied).size).to.equal(applied.length);
      expect(names).to.include('0007_several_hosts');
    } finally {
      await l.close();
    }
  });

  it('a lease has one holder at a time; it passes on at expiry or release, and racing takers get one winner', async () => {
    const a = await Ledger.open(tdb.url, silentLogger);
    const b = await Ledger.open(tdb.url, silentLogger);
    try {
      const t0 = new Date();
      expect(await a.leases.acquire('job', 'A', 10_000, t0)).to.equal(true);
      expect(await b.leases.acquire('job', 'B', 10_000, t0)).to.equal(false);
      expect(await a.leases.acquire('job', 'A', 10_000, new Date(t0.getTime() + 5_000)), 'renewal').to.equal(true);
      // A's renewal runs to t0+15 s: B still cannot take it at t0+12 s, but can at t0+16 s.
      expect(await b.leases.acquire('job', 'B', 10_000, new Date(t0.getTime() + 12_000))).to.equal(false);
      expect(await b.leases.acquire('job', 'B', 10_000, new Date(t0.getTime() + 16_000))).to.equal(true);
      expect(await a.leases.acquire('job', 'A', 10_000, new Date(t0.getTime() + 17_000))).to.equal(false);
      await a.leases.release('job', 'A'); // not A's: changes nothing
      expect(await b.leases.holder('job', new Date(t0.getTime() + 17_000))).to.equal('B');
      await b.leases.release('job', 'B');
      expect(await a.leases.acquire('job', 'A', 10_000)).to.equal(true);

      // Concurrent takers through one handle: PostgreSQL runs them on parallel pool
      // connections. (Two SQLite handles in one process would block each other's event loop
      // in busy_timeout; each process has one handle, and the write lock serialises them.)
      const wins = await Promise.all(Array.from({ length: 12 }, (_, i) => a.leases.acquire('race', `P${i}`, 30_000)));
      expect(wins.filter(Boolean)).to.have.length(1);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('a data dir is paired with the ledger it was first started with; another ledger is refused', async () => {
    const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'pgw-pair-'));
    const other = await make();
    const l1 = await Ledger.open(tdb.url, silentLogger);
    const l2 = await Ledger.open(other.url, silentLogger);
    try {
      await Promise.all([pairDataDirWithLedger(dir, l1), pairDataDirWithLedger(dir, l1)]);
      await pairDataDirWithLedger(dir, l1);
      const err = await pairDataDirWithLedger(dir, l2).then(() => null, (e: unknown) => e);
      expect(isPgwError(err) && err.code).to.equal('ledger.data_dir_mismatch');
    } finally {
      await l1.close();
      await l2.close();
      await other.drop();
      await fsp.rm(dir, { recursive: true, force: true });
    }
  });
});

describe('SQLite ledger placement', () => {
  it('network and cluster file systems are recognised by their statfs type; local ones are not', () => {
    expect(sharedFilesystem(0x6969)).to.equal('nfs');
    expect(sharedFilesystem(0xff534d42)).to.equal('cifs');
    expect(sharedFilesystem(0x65735546)).to.match(/^fuse/);
    expect(sharedFilesystem(0xef53)).to.equal(null); // ext4
    expect(sharedFilesystem(0x01021994)).to.equal(null); // tmpfs
    expect(sharedFilesystem(0x58465342)).to.equal(null); // xfs
  });

  it('the ledger opens on this machine\'s local temp dir (the guard runs on every SQLite open)', async () => {
    const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'pgw-local-'));
    const type = (await fsp.statfs(dir)).type;
    expect(sharedFilesystem(type), `temp dir file system 0x${type.toString(16)}`).to.equal(null);
    await (await Ledger.open(`sqlite:${path.join(dir, 'ledger.db')}`, silentLogger)).close();
    await fsp.rm(dir, { recursive: true, force: true });
  });
});
