import { expect } from 'chai';
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadConfig, redactedConfig } from '../../../gateway/core/config.js';
import { loadMasterKey } from '../../../gateway/core/sealed-blob.js';
import { PgwError } from '../../../gateway/core/errors.js';

function problems(fn: () => unknown): string[] {
  try {
    fn();
  } catch (err) {
    expect(err).to.be.instanceOf(PgwError);
    expect((err as PgwError).code).to.equal('config.invalid');
    return (err as PgwError).details.problems as string[];
  }
  throw new Error('expected config.invalid');
}

describe('config', () => {
  it('has the documented defaults', () => {
    const c = loadConfig({ env: {} });
    expect(c.sftpPort).to.equal(2222);
    expect(c.httpsPort).to.equal(8443);
    expect(c.consolePort).to.equal(8444);
    expect(c.queuePrefix).to.equal('pgw');
    expect(c.bind).to.equal('127.0.0.1');
    expect(c.dataDir).to.equal(path.resolve('./var'));
    expect(c.databaseUrl).to.equal(`sqlite:${path.resolve('./var/ledger.db')}`);
  });

  it('layers file, then env', async () => {
    const file = path.join(await fsp.mkdtemp(path.join(os.tmpdir(), 'pgwc-')), 'c.json');
    await fsp.writeFile(file, JSON.stringify({ sftpPort: 2300, limits: { records: 5 }, queuePrefix: 'fromfile' }));
    const c = loadConfig({ file, env: { PGW_QUEUE_PREFIX: 'fromenv', PGW_MAX_UPLOAD_BYTES: '1000' } });
    expect(c.sftpPort).to.equal(2300);
    expect(c.limits.records).to.equal(5);
    expect(c.limits.uploadBytes).to.equal(1000);
    expect(c.limits.jsonDepth).to.equal(32); // defaults kept beside file values
    expect(c.queuePrefix).to.equal('fromenv');
  });

  it('reports every bad setting at once, without echoing values', () => {
    const p = problems(() => loadConfig({ env: { PGW_SFTP_PORT: '70000', PGW_REDIS_URL: 'http://x', PGW_MAX_RECORDS: 'many', PGW_LOG_LEVEL: 'loud', PGW_KEY_PASSPHRASE: 'short' } }));
    expect(p.join('\n')).to.include('PGW_SFTP_PORT').and.include('PGW_REDIS_URL').and.include('PGW_MAX_RECORDS').and.include('PGW_LOG_LEVEL').and.include('PGW_KEY_PASSPHRASE');
    expect(p.join('\n')).not.to.include('short');
  });

  it('reads the passphrase from a file and refuses both sources at once', async () => {
    const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'pgwc-'));
    await fsp.writeFile(path.join(dir, 'pp'), 'correct horse battery\n');
    expect(loadConfig({ env: { PGW_KEY_PASSPHRASE_FILE: path.join(dir, 'pp') } }).keyPassphrase).to.equal('correct horse battery');
    problems(() => loadConfig({ env: { PGW_KEY_PASSPHRASE_FILE: path.join(dir, 'pp'), PGW_KEY_PASSPHRASE: 'something long' } }));
  });

  it('refuses the fault hook in production and unknown file keys', async () => {
    problems(() => loadConfig({ env: { PGW_ENV: 'production', PGW_FAULT: 'after-fsync' } }));
    const file = path.join(await fsp.mkdtemp(path.join(os.tmpdir(), 'pgwc-')), 'c.json');
    await fsp.writeFile(file, JSON.stringify({ sftpPrt: 1, __proto__: { polluted: true } }));
    expect(problems(() => loadConfig({ file, env: {} })).join()).to.include('sftpPrt');
    expect(({} as Record<string, unknown>).polluted).to.equal(undefined);
  });

  it('redacts secrets for logging', () => {
    const c = loadConfig({ env: { PGW_KEY_PASSPHRASE: 'a secret passphrase', PGW_REDIS_URL: 'redis://u:pw@h:6379' } });
    const r = JSON.stringify(redactedConfig(c));
    expect(r).not.to.include('a secret passphrase');
    expect(r).not.to.include(':pw@');
  });
});

describe('config: data master key', () => {
  it('takes PGW_DATA_KEY (hex or base64 of 32 bytes), never echoes a bad one, and redacts it', async () => {
    const hex = 'ab'.repeat(32);
    const c = loadConfig({ env: { PGW_DATA_KEY: hex } });
    expect(c.dataKey).to.equal(hex);
    expect(JSON.stringify(redactedConfig(c))).to.not.include(hex);
    expect((await loadMasterKey(c.dataKey, 'unused passphrase', '/nonexistent')).equals(Buffer.alloc(32, 0xab))).to.equal(true);
    const b64 = Buffer.alloc(32, 7).toString('base64');
    expect((await loadMasterKey(loadConfig({ env: { PGW_DATA_KEY: b64 } }).dataKey, 'x', '/nonexistent')).equals(Buffer.alloc(32, 7))).to.equal(true);
    let msg = '';
    try { loadConfig({ env: { PGW_DATA_KEY: 'too-short-secret' } }); } catch (e) { msg = (e as Error).message; }
    expect(msg).to.include('PGW_DATA_KEY').and.not.include('too-short-secret');
  });
});
