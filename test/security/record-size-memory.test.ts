/**
 * One huge record must not take the worker's memory with it. A batch whose
 * one record holds a 96 MiB field — a CSV cell (quoted, with delimiters, quotes and line
 * breaks in it) and a string in an object-form JSON record — goes through the real validate
 * stage in a child process (test/helpers/validate-stage-child.ts), which reports its own peak
 * RSS (VmHWM). The bound is a resource bound, not a timing: 256 MiB, what the memory
 * benchmark holds a worker to; whole, such a batch took ~710 MiB. The record is rejected with
 * `limits.record_size` and nothing of it reaches the ledger; the records around it are accepted.
 */
import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DataDir } from '../../gateway/core/data-dir.js';
import { Ledger } from '../../gateway/core/ledger/index.js';
import { silentLogger } from '../../gateway/core/logger.js';
import { DataKeys, SealedWriter } from '../../gateway/core/sealed-blob.js';
import { newBatchId } from '../../gateway/ingest/ingest-service.js';
import { sampleRecord } from '../../schemas/testing/sample-records.js';
import { suiteDatabase, type TestDatabase } from '../helpers/databases.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const CHILD = path.join(ROOT, 'test', 'helpers', 'validate-stage-child.ts');
const MiB = 1024 * 1024;
const FIELD_BYTES = 96 * MiB;
const RSS_BOUND_KIB = 256 * 1024;
/** In the long value; must never come back in the verdict. */
const CANARY = 'Geheim-123456782';

describe('validate stage: a 96 MiB record stays within the worker memory bound (issue 19)', function () {
  this.timeout(120_000);
  let dir: string;
  let dataDir: DataDir;
  let db: TestDatabase;
  let ledger: Ledger;
  const master = randomBytes(32);
  const dataKeys = new DataKeys(master);
  const now = new Date();

  before(async () => {
    dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'pgw-recsize-'));
    dataDir = new DataDir(path.join(dir, 'data'));
    await dataDir.ensure();
    db = await suiteDatabase(dataDir.ledgerFile);
    ledger = await Ledger.open(db.url, silentLogger);
    await ledger.partners.create({ id: 'p1', name: 'Partner One' });
  });

  after(async () => {
    await ledger?.close();
    await db?.drop();
    if (dir) await fsp.rm(dir, { recursive: true, force: true });
  });

  /** A promoted batch whose plaintext is `head`, `filler` repeated to FIELD_BYTES or a little more, then `tail`: written ~1 MiB at a time. */
  async function promoted(fileName: string, head: string, filler: string, tail: string): Promise<string> {
    const id = newBatchId();
    const { key, wrapped } = dataKeys.create();
    const w = await SealedWriter.create(dataDir.payloadFile(id), key);
    await w.write(Buffer.from(head));
    const piece = Buffer.from(filler.repeat(Math.floor(MiB / filler.length))); // whole fillers: no escape cut in two
    const pieces = Math.ceil(FIELD_BYTES / piece.length);
    for (let n = 0; n < pieces; n++) await w.write(piece);
    await w.write(Buffer.from(tail));
    await w.finish();
    const size = Buffer.byteLength(head) + pieces * piece.length + Buffer.byteLength(tail);
    await ledger.batches.insertReceived({
      id, partnerId: 'p1', channel: 'sftp', lane: 'live', fileName, sha256: randomBytes(32).toString('hex'), size, receivedAt: now, dataKey: wrapped,
    });
    await ledger.batches.advance(id, 'decrypt', 'validate', {}, { stage: 'decrypt', outcome: 'ok' });
    return id;
  }

  /** The validate stage on `batchId` in a child process: its verdict and peak RSS. */
  function runStage(batchId: string): Promise<{ stage: string; outcome: string; errorCode: string | null; issues: string | null; hwmKiB: number }> {
    const env = {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: process.env.HOME ?? dir,
      TMPDIR: dir,
      PGW_ENV: 'test',
      PGW_LOG_LEVEL: 'error',
      PGW_DATA_DIR: dataDir.root,
      PGW_DATABASE_URL: db.url,
      PGW_DATA_KEY: master.toString('hex'),
    };
    return new Promise((resolve, reject) => {
      const child = spawn(process.execPath, ['--import', 'tsx', CHILD, batchId], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
      child.stderr.on('data', (d: Buffer) => { err += d.toString(); });
      child.on('error', reject);
      child.on('close', (code) => {
        if (code !== 0) return reject(new Error(`validate child exited ${code}: ${err.slice(-2000)}`));
        resolve(JSON.parse(out.trim().split('\n').pop()!));
      });
    });
  }

  function expectRecordRejectedInBound(r: Awaited<ReturnType<typeof runStage>>): void {
    expect(r.hwmKiB, `peak RSS of the validate stage: ${Math.round(r.hwmKiB / 1024)} MiB`).to.be.below(RSS_BOUND_KIB);
    expect(r, 'verdict').to.include({ stage: 'ack', outcome: 'partially_accepted', errorCode: null });
    const issues = JSON.parse(r.issues!) as { errors: { record: number; path: string; code: string }[] };
    expect(issues.errors.map((e) => `${e.record} ${e.path} ${e.code}`)).to.deep.equal(['1  limits.record_size']);
    expect(r.issues).not.to.contain(CANARY);
  }

  it('CSV: a 96 MiB quoted cell', async () => {
    const fields = Object.keys(sampleRecord(0, now));
    const row = (i: number) => fields.map((f) => sampleRecord(i, now)[f as keyof ReturnType<typeof sampleRecord>]).join(',');
    const [before, after] = row(1).split(`,${sampleRecord(1, now).maidenName},`);
    const head = `# schema: client-registration/v1\r\n${fields.join(',')}\r\n${row(0)}\r\n${before},"`;
    const id = await promoted('big.csv.pgp', head, `${CANARY}, ""x"";\r\n`, `",${after}\r\n${row(2)}\r\n`);
    expectRecordRejectedInBound(await runStage(id));
  });

  it('JSON: a 96 MiB string in an object-form record', async () => {
    const rec = (i: number) => JSON.stringify(sampleRecord(i, now));
    const [before, after] = rec(1).split(`"${sampleRecord(1, now).maidenName}"`);
    const head = `{"schema":"client-registration/v1","createdAt":"${now.toISOString()}","records":[${rec(0)},${before}"`;
    const id = await promoted('big.json.pgp', head, `${CANARY} \\" `, `"${after},${rec(2)}]}`);
    expectRecordRejectedInBound(await runStage(id));
  });
});
