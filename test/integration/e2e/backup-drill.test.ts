/**
 * Disaster-recovery drill, as an operator would run it: traffic over SFTP and HTTPS, a
 * `pgw backup` while the gateway runs, the data dir and the database lost, `pgw restore`
 * into new ones, `pgw start` — and the installation carries on: every batch with its
 * timeline, a stored payload exportable, the audit chain intact, a new upload acked, and an
 * ack picked up before the backup not offered again. Also: what a backup must never hold
 * (passphrase, master key), that a changed backup or the wrong secrets are refused before
 * anything is written, and that blobs written after the ledger snapshot are left out.
 * Runs on the suite's ledger (SQLite, then PostgreSQL under npm test).
 */
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { GatewayHarness, type TestPartner } from '../../helpers/gateway-harness.js';
import { waitFor } from '../../helpers/wait-for.js';
import { curl } from '../../helpers/https-client.js';
import { openRequest, subjectCli } from '../../helpers/subject-cli.js';
import { postgresDatabase, suiteBackend, type TestDatabase } from '../../helpers/databases.js';
import { sampleBatch, sampleRecord } from '../../../schemas/testing/sample-records.js';
import { loadConfig } from '../../../gateway/core/config.js';
import { silentLogger } from '../../../gateway/core/logger.js';
import { loadMasterKey } from '../../../gateway/core/sealed-blob.js';
import { Queues, createRedis } from '../../../workers/queues.js';
import { createBackup, restoreBackup } from '../../../gateway/admin/backup.js';

const run = promisify(execFile);
const PGW = path.resolve(import.meta.dirname, '../../../bin/pgw.js');

/** PGW_DRILL_TRANSCRIPT=<file>: the operator's view of the drill (pgw outputs), appended there. */
async function transcript(title: string, text: string): Promise<void> {
  const file = process.env.PGW_DRILL_TRANSCRIPT;
  if (file) await fsp.appendFile(file, `--- ${title}\n${text.trimEnd()}\n`);
}

/** Every file below `dir` (recursively), absolute. */
async function allFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await fsp.readdir(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...await allFiles(p));
    else out.push(p);
  }
  return out;
}

describe('backup drill: back up a running gateway, lose it, restore into new ones, carry on', function () {
  this.timeout(300_000);
  let h: GatewayHarness;
  let alpha: TestPartner;
  let token = '';
  let backupDir = '';
  const now = new Date();
  const person = sampleRecord(0, now);
  /** `pgw batches show --json` of every batch, as before the backup. */
  const shown: Record<string, { batch: Record<string, unknown>; events: unknown[]; ack: Record<string, unknown> | null }> = {};
  const ids: Record<string, string> = {};

  const pgw = async (args: string[], env: Record<string, string> = {}) => run(process.execPath, [PGW, ...args], { env: { ...h.env, ...env }, maxBuffer: 16 * 1024 * 1024 });
  /** A pgw command that must fail: its `pgw: <code>:` line. */
  const pgwFails = async (args: string[], env: Record<string, string> = {}): Promise<string> => {
    try {
      await pgw(args, env);
    } catch (err) {
      const e = err as { code?: number; stderr?: string };
      expect(e.code).to.equal(1);
      return /^pgw: ([a-z_.]+):/m.exec(e.stderr ?? '')?.[1] ?? `no code in: ${e.stderr}`;
    }
    throw new Error(`pgw ${args.join(' ')} succeeded`);
  };
  const url = (p: string) => `https://127.0.0.1:${h.httpsPort}${p}`;
  const api = (args: string[]) => curl(h.tlsCertFile, ['-H', `Authorization: Bearer ${token}`, ...args]);
  const pendingAcks = async (): Promise<string[]> => {
    const r = await api([url('/v1/acks?pending=true')]);
    expect(r.httpCode, r.stdout).to.equal(200);
    return (JSON.parse(r.stdout) as { acks: { batchId: string }[] }).acks.map((a) => a.batchId).sort();
  };
  const outboxListing = async (): Promise<string> => {
    const r = await h.sftp(alpha, ['ls -1 /outbox']);
    expect(r.code, r.stderr).to.equal(0);
    return r.stdout;
  };
  const uploadSftp = async (name: string, text: string): Promise<string> => {
    const file = await h.seal(alpha, text, name);
    const r = await h.sftp(alpha, [`put ${file} /inbox/${name}`]);
    expect(r.code, r.stderr).to.equal(0);
    await h.waitForAck('kz-alpha', `${name}.ack.pgp`);
    const b = (await h.withLedger((l) => l.batches.list({ partnerId: 'kz-alpha' }))).find((x) => x.file_name === name)!;
    return b.id;
  };

  before(async () => {
    h = await GatewayHarness.create();
    await h.start('all');
    alpha = await h.addPartner('kz-alpha');
    token = (await pgw(['partner', 'token', 'kz-alpha'])).stdout.trim();
    backupDir = path.join(h.dir, 'backup-1');
  });
  after(async () => {
    await h?.cleanup();
  });

  it('traffic: two uploads over SFTP (one partly rejected), one over HTTPS; two acks picked up, one also deleted', async () => {
    ids.first = await uploadSftp('reg-1.json.pgp', JSON.stringify(sampleBatch(3, now)));
    const { ack } = await h.fetchAck(alpha, '/outbox/reg-1.json.pgp.ack.pgp');
    expect(ack.status).to.equal('accepted');
    expect((await h.sftp(alpha, ['rm /outbox/reg-1.json.pgp.ack.pgp'])).code).to.equal(0);

    const mixed = sampleBatch(2, now);
    mixed.records[1]!.bsn = '123456789'; // fails the 11-test: one record rejected
    ids.second = await uploadSftp('reg-2.json.pgp', JSON.stringify(mixed));

    const file = await h.seal(alpha, JSON.stringify(sampleBatch(2, new Date(now.getTime() + 1000))), 'reg-3.json.pgp');
    const put = await api(['-H', 'Content-Type: application/octet-stream', '-T', file, url('/v1/batches/reg-3.json.pgp')]);
    expect(put.httpCode, put.stdout).to.equal(202);
    ids.third = (JSON.parse(put.stdout) as { batchId: string }).batchId;
    await waitFor(async () => (await h.withLedger((l) => l.batches.get(ids.third!)))?.stage === 'done', 60_000, 'HTTPS batch done');
    await waitFor(async () => (await api(['-o', path.join(h.dir, 'reg-3.ack.pgp'), url(`/v1/batches/${ids.third}/ack`)])).httpCode === 200, 30_000, 'ack over HTTPS');

    expect(await pendingAcks()).to.deep.equal([ids.second]);
    for (const id of Object.values(ids)) shown[id] = JSON.parse((await pgw(['batches', 'show', id, '--json'])).stdout);
    expect(shown[ids.first]!.batch.outcome).to.equal('accepted');
    expect(shown[ids.second]!.batch.outcome).to.equal('partially_accepted');
    expect(shown[ids.third]!.batch.channel).to.equal('https');
    const [blob, entry] = await Promise.all([path.join(h.dataDir.acksDir, `${ids.second}.v1.pgp`), path.join(h.dataDir.outboxDir('kz-alpha'), 'reg-2.json.pgp.ack.pgp')].map((f) => fsp.stat(f)));
    expect(entry!.ino, 'an outbox entry is a hard link of its ack blob').to.equal(blob!.ino);
  });

  it('pgw backup while the gateway runs; pgw backup verify passes; no passphrase or master key inside', async () => {
    const r = JSON.parse((await pgw(['backup', '--out', backupDir, '--json'])).stdout) as { files: number; dialect: string; excluded: unknown[]; bytes: number };
    await transcript(`pgw backup --out <dir> (ledger on ${r.dialect})`, `${r.files} files, ${r.bytes} bytes`);
    expect(r.dialect).to.equal(suiteBackend());
    expect(r.excluded).to.deep.equal([]);
    const v = JSON.parse((await pgw(['backup', 'verify', backupDir, '--json'])).stdout) as { ok: boolean; files: number };
    expect(v).to.deep.include({ ok: true, files: r.files });
    await transcript('pgw backup verify <dir>', (await pgw(['backup', 'verify', backupDir])).stdout);

    const master = await loadMasterKey(h.config.dataKey, h.config.keyPassphrase!, h.dataDir.keysDir);
    const needles = [Buffer.from(h.config.keyPassphrase!), master, Buffer.from(master.toString('hex')), Buffer.from(master.toString('base64'))];
    const files = await allFiles(backupDir);
    const names = files.map((f) => path.relative(backupDir, f));
    for (const f of files) {
      const bytes = await fsp.readFile(f);
      for (const n of needles) expect(bytes.includes(n), `${path.relative(backupDir, f)} holds a secret`).to.equal(false);
      expect((await fsp.stat(f)).mode & 0o077, `${path.relative(backupDir, f)} is private`).to.equal(0);
    }
    // Blobs of every batch; the ledger only as a snapshot, never its live files.
    for (const id of Object.values(ids)) expect(names.some((n) => n.startsWith('data/spool/') && n.includes(id)), `spool of ${id}`).to.equal(true);
    expect(names.filter((n) => /ledger\.db/.test(n))).to.deep.equal([]);
    expect(names).to.include(suiteBackend() === 'sqlite' ? 'ledger.sqlite' : 'ledger.pgdump');
    expect(names).to.include('data/keys/data-key.salt');
  });

  it('a changed backup, or the wrong passphrase, is refused before anything is written', async () => {
    const copy = path.join(h.dir, 'backup-tampered');
    await fsp.cp(backupDir, copy, { recursive: true });
    const blob = (await allFiles(path.join(copy, 'data', 'spool')))[0]!;
    const bytes = await fsp.readFile(blob);
    bytes[bytes.length >> 1] ^= 0x01;
    await fsp.writeFile(blob, bytes);
    const target = { PGW_DATA_DIR: path.join(h.dir, 'never-written') };
    expect(await pgwFails(['backup', 'verify', copy])).to.equal('backup.invalid');
    expect(await pgwFails(['restore', '--from', copy], { ...target, PGW_DATABASE_URL: `sqlite:${path.join(h.dir, 'never-written', 'ledger.db')}` })).to.equal('backup.invalid');
    expect(await pgwFails(['backup', 'verify', backupDir], { PGW_KEY_PASSPHRASE: 'another-installation-passphrase' })).to.equal('backup.key_mismatch');
    const manifest = path.join(copy, 'manifest.json');
    await fsp.writeFile(manifest, (await fsp.readFile(manifest, 'utf8')).replace('"takenAt": "', '"takenAt": "1'));
    expect(await pgwFails(['backup', 'verify', copy])).to.equal('backup.key_mismatch');
    expect(await fsp.stat(target.PGW_DATA_DIR).catch(() => null)).to.equal(null);
    // Into the running installation's own data dir and database: refused, nothing touched.
    expect(await pgwFails(['restore', '--from', backupDir])).to.equal('backup.restore_not_empty');
    await fsp.rm(copy, { recursive: true });
  });

  it('a batch and a document written after the ledger snapshot are orphans: restore leaves their files out', async () => {
    let late = '';
    let lateDocument = '';
    const out = path.join(h.dir, 'backup-orphans');
    await createBackup(h.config, out, 'test', silentLogger, {
      afterLedgerSnapshot: async () => {
        late = await uploadSftp('late.json.pgp', JSON.stringify(sampleBatch(1, now)));
        const report = path.join(h.dir, 'late-report.txt');
        await fsp.writeFile(report, 'declaration 2026-05\n');
        lateDocument = (JSON.parse((await pgw(['send', 'kz-alpha', report, '--name', 'late-report.txt', '--json'])).stdout) as { documentId: string }).documentId;
      },
    });
    expect(lateDocument).to.match(/^d-/);
    const stored = (await allFiles(path.join(out, 'data'))).map((f) => path.relative(out, f));
    expect(stored.some((n) => n.includes(late)), 'the late batch\'s blobs were copied').to.equal(true);
    expect(stored.some((n) => n.includes(lateDocument)), 'the late document was copied').to.equal(true);
    const listed = (JSON.parse(await fsp.readFile(path.join(out, 'manifest.json'), 'utf8')) as { files: { path: string }[] }).files.map((f) => f.path);
    expect(listed).to.include.members(['partners/kz-alpha/outbox/late-report.txt.pgp', 'partners/kz-alpha/outbox/late.json.pgp.ack.pgp']);

    const side = path.join(h.dir, 'side');
    let db: TestDatabase | null = null;
    let databaseUrl = `sqlite:${path.join(side, 'ledger.db')}`;
    if (suiteBackend() === 'postgres') {
      db = await postgresDatabase();
      databaseUrl = db.url;
    }
    try {
      const cfg = loadConfig({ env: { ...h.env, PGW_DATA_DIR: side, PGW_DATABASE_URL: databaseUrl } });
      const r = await restoreBackup(cfg, out, 'test', silentLogger);
      expect(r.orphans).to.be.greaterThan(0);
      await transcript('pgw restore of a backup with a batch and a document written after its ledger snapshot', `left out ${r.orphans} files`);
      const restored = (await allFiles(side)).map((f) => path.relative(side, f));
      expect(restored.filter((n) => n.includes(late) || n.includes('late.json') || n.includes(lateDocument) || n.includes('late-report'))).to.deep.equal([]);
      for (const id of Object.values(ids)) expect(restored.some((n) => n.startsWith('spool/') && n.includes(id)), `spool of ${id}`).to.equal(true);
    } finally {
      await db?.drop();
      await fsp.rm(out, { recursive: true, force: true });
    }
  });

  it('disaster: the gateway stops, its data dir, database and queues are lost; pgw restore fills new ones', async () => {
    await h.stopAll();
    const r = createRedis(h.config, true, silentLogger);
    const q = new Queues(r, h.config.queuePrefix, 1);
    await q.obliterate();
    await q.close();
    r.disconnect();
    await fsp.rm(h.dataDir.root, { recursive: true });
    if (suiteBackend() === 'postgres') {
      const u = new URL(h.config.databaseUrl);
      const name = u.pathname.slice(1);
      u.pathname = '/test';
      const admin = new pg.Client({ connectionString: u.toString() });
      await admin.connect();
      try {
        await admin.query(`DROP DATABASE ${name} WITH (FORCE)`);
        await admin.query(`CREATE DATABASE ${name}`);
      } finally {
        await admin.end();
      }
    }
    const out = (await pgw(['restore', '--from', backupDir])).stdout;
    await transcript('pgw restore --from <dir> (into a new data dir and database)', out);
    // The ack blob and its outbox entry are one file again (retention removes the entry by inode).
    const [blob, entry] = await Promise.all([path.join(h.dataDir.acksDir, `${ids.second}.v1.pgp`), path.join(h.dataDir.outboxDir('kz-alpha'), 'reg-2.json.pgp.ack.pgp')].map((f) => fsp.stat(f)));
    expect(entry!.ino).to.equal(blob!.ino);
    expect(out).to.match(/restored\s+\d+ files/);
    expect(out).to.include('apply again');
    expect((await fsp.stat(h.dataDir.root)).mode & 0o777).to.equal(0o700);
  });

  it('restarted: every batch as before with its timeline; payload exportable; audit chain intact', async () => {
    await h.start('all');
    for (const [id, before] of Object.entries(shown)) {
      const after = JSON.parse((await pgw(['batches', 'show', id, '--json'])).stdout) as typeof before;
      expect(after.events, `timeline of ${id}`).to.deep.equal(before.events);
      expect(after.batch).to.deep.include({ stage: 'done', outcome: before.batch.outcome, sha256: before.batch.sha256 });
      expect(after.ack).to.deep.equal(before.ack);
    }
    const exported = path.join(h.dir, 'subject.json');
    await subjectCli(h, ['export', '--out', exported], person.bsn!, await openRequest(h, 'access'));
    const doc = JSON.parse(await fsp.readFile(exported, 'utf8')) as { records: { batchId: string; data: Record<string, string> }[] };
    expect(doc.records.map((x) => x.batchId)).to.include(ids.first);
    expect(doc.records.find((x) => x.batchId === ids.first)!.data).to.include({ bsn: person.bsn, email: person.email });
    const audit = JSON.parse((await pgw(['audit', 'verify', '--json'])).stdout) as { ok: boolean; events: number };
    expect(audit.ok).to.equal(true);
    await transcript('after pgw start: pgw batches list, pgw audit verify', `${(await pgw(['batches', 'list'])).stdout}${(await pgw(['audit', 'verify'])).stdout}`);
    const actions = (await h.withLedger((l) => l.audit.list(20))).map((e) => e.action);
    expect(actions).to.include.members(['subject.export', 'backup.restored']);
  });

  it('a new upload is accepted and acked; acks picked up before the backup are not offered again', async () => {
    expect(await outboxListing()).to.not.include('reg-1.json.pgp.ack.pgp');
    expect(await pendingAcks()).to.deep.equal([ids.second]);
    ids.fourth = await uploadSftp('reg-4.json.pgp', JSON.stringify(sampleBatch(2, new Date(now.getTime() + 2000))));
    const { ack } = await h.fetchAck(alpha, '/outbox/reg-4.json.pgp.ack.pgp');
    expect(ack).to.deep.include({ status: 'accepted', batchId: ids.fourth });
    await waitFor(async () => !(await pendingAcks()).includes(ids.fourth!), 10_000, 'the download recorded');
    expect(await pendingAcks()).to.deep.equal([ids.second]);
    const listing = await outboxListing();
    expect(listing).to.include('reg-4.json.pgp.ack.pgp');
    expect(listing).to.not.include('reg-1.json.pgp.ack.pgp');
  });
});
