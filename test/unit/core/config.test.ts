// test-pass: once
import { expect } from 'chai';
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadConfig, redactedConfig, SETTINGS } from '../../../gateway/core/config.js';
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

  it('refuses a PGW_TIMEZONE the runtime does not know (the console would fail on every page)', () => {
    expect(problems(() => loadConfig({ env: { PGW_TIMEZONE: 'Mars/Olympus_Mons' } })).join('\n')).to.include('PGW_TIMEZONE: not a time zone');
    expect(loadConfig({ env: { PGW_TIMEZONE: 'America/New_York' } }).console.timezone).to.equal('America/New_York');
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

describe('config: secrets never echoed (file syntax errors, URLs)', () => {
  const secret = 'hunter2-Very-Secret-Passphrase';
  // The shapes V8 quotes the input for (an unexpected token), and those it names a position for.
  const broken: [string, number, number][] = [
    [`{\n  "sftpPort": 2222,\n  "keyPassphrase": ${secret}\n}`, 3, 20],
    [`{\n  "keyPassphrase": "${secret}" "x"\n}`, 2, 53],
    [`{"keyPassphrase": "${secret}",}`, 1, 52],
    [`{"keyPassphrase": '${secret}'}`, 1, 19],
    [`{"keyPassphrase": "${secret}`, 1, 50],
    [`{"keyPassphrase": "${secret}"} ${secret}`, 1, 53],
  ];

  it('a config file with a syntax error next to the passphrase: the file name and a position, never its text', async () => {
    const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'pgwc-'));
    for (const [i, [text, line, column]] of broken.entries()) {
      const file = path.join(dir, `c${i}.json`);
      await fsp.writeFile(file, text);
      let err: unknown;
      try { loadConfig({ file, env: {} }); } catch (e) { err = e; }
      expect(err, text).to.be.instanceOf(PgwError);
      const all = `${(err as PgwError).message}\n${JSON.stringify((err as PgwError).details)}`;
      expect(all, text).not.to.include('hunter2');
      expect((err as PgwError).details.problems, text).to.deep.equal([`${file}: not valid JSON (syntax error at line ${line}, column ${column})`]);
    }
    expect(problems(() => loadConfig({ file: path.join(dir, 'missing.json'), env: {} }))).to.deep.equal([`${path.join(dir, 'missing.json')}: cannot read the file (ENOENT)`]);
    await fsp.rm(dir, { recursive: true, force: true });
  });

  it('redacts every credential in the ledger and Redis URLs: user:pass@, password= and sslpassword= parameters, bare secrets, unencoded @', () => {
    const dump = (env: NodeJS.ProcessEnv) => JSON.stringify(redactedConfig(loadConfig({ env })));
    const pg = dump({ PGW_DATABASE_URL: 'postgres://gw:pw1-secret@db.internal:5432/pgw?sslmode=verify-full&password=pw2-secret&sslpassword=pw3-secret&PassWord=pw4-secret' });
    expect(pg).to.include('postgres://gw:***@db.internal:5432/pgw?sslmode=verify-full&password=***&sslpassword=***&PassWord=***');
    for (const [url, kept] of [
      ['postgresql://db1:5432,db2:5432/pgw?user=gw&password=pw5-secret&target_session_attrs=read-write', 'postgresql://db1:5432,db2:5432/pgw?user=gw&password=***&target_session_attrs=read-write'],
      ['postgres://gw:pw6@@secret@db/pgw', 'postgres://gw:***@db/pgw'],
      ['postgres://gw:pw7%40secret@db/pgw?pass%77ord=pw8-secret', 'postgres://gw:***@db/pgw?pass%77ord=***'],
      ['postgres://db/pgw?application_name=gw#pw9-secret', 'postgres://db/pgw?application_name=gw#***'],
    ]) {
      const d = dump({ PGW_DATABASE_URL: url });
      expect(d, url).to.include(kept!);
      expect(d, url).not.to.match(/pw[0-9]/);
    }
    const redis = dump({ PGW_REDIS_URL: 'rediss://pw10-secret@cache.internal:6380/0?password=pw11-secret&family=6' });
    expect(redis).to.include('rediss://***@cache.internal:6380/0?password=***&family=6');
    expect(dump({ PGW_REDIS_URL: 'redis://default:pw12-secret@cache:6379' })).to.include('redis://default:***@cache:6379').and.not.include('pw12');
    expect(dump({ PGW_DATABASE_URL: 'sqlite:/var/lib/pgw/ledger.db' })).to.include('"databaseUrl":"sqlite:/var/lib/pgw/ledger.db"');
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

describe('config: Redis Cluster and Sentinel', () => {
  it('defaults to standalone on PGW_REDIS_URL', () => {
    expect(loadConfig({ env: {} }).redis).to.deep.equal({ mode: 'standalone', nodes: [], sentinelName: null, sentinelPassword: null });
  });

  it('reads cluster seed nodes and sentinels (host:port, [v6]:port, host names)', () => {
    const c = loadConfig({ env: { PGW_REDIS_MODE: 'cluster', PGW_REDIS_NODES: '10.0.0.1:7000, redis-b.internal:7001,[::1]:7002', PGW_REDIS_URL: 'rediss://gw:pw@ignored:6379' } });
    expect(c.redis).to.deep.include({ mode: 'cluster', nodes: ['10.0.0.1:7000', 'redis-b.internal:7001', '[::1]:7002'] });
    const s = loadConfig({ env: { PGW_REDIS_MODE: 'sentinel', PGW_REDIS_NODES: 's1:26379,s2:26379', PGW_REDIS_SENTINEL_NAME: 'pgw-master', PGW_REDIS_URL: 'redis://:pw@x/2' } });
    expect(s.redis).to.deep.equal({ mode: 'sentinel', nodes: ['s1:26379', 's2:26379'], sentinelName: 'pgw-master', sentinelPassword: null });
  });

  it('refuses settings that do not fit the mode, each with the variable to fix', () => {
    const only = (env: NodeJS.ProcessEnv) => problems(() => loadConfig({ env }));
    expect(only({ PGW_REDIS_MODE: 'cluster' })).to.deep.equal(['PGW_REDIS_NODES: required when PGW_REDIS_MODE is cluster (comma-separated host:port of the cluster seed nodes)']);
    expect(only({ PGW_REDIS_MODE: 'sentinel', PGW_REDIS_NODES: 's1:26379' })).to.deep.equal(['PGW_REDIS_SENTINEL_NAME: required when PGW_REDIS_MODE is sentinel (the master name the sentinels monitor)']);
    expect(only({ PGW_REDIS_NODES: 'a:7000' })[0]).to.match(/^PGW_REDIS_NODES: set, but PGW_REDIS_MODE is standalone/);
    expect(only({ PGW_REDIS_SENTINEL_NAME: 'm', PGW_REDIS_SENTINEL_PASSWORD: 'pw' })).to.deep.equal([
      'PGW_REDIS_SENTINEL_NAME: set, but PGW_REDIS_MODE is not sentinel', 'PGW_REDIS_SENTINEL_PASSWORD: set, but PGW_REDIS_MODE is not sentinel',
    ]);
    expect(only({ PGW_REDIS_MODE: 'cluster', PGW_REDIS_NODES: 'a:7000', PGW_REDIS_URL: 'redis://x/3' })).to.deep.equal(['PGW_REDIS_URL: Redis Cluster has only database 0; remove the /<db> path']);
    expect(only({ PGW_REDIS_MODE: 'cluster', PGW_REDIS_NODES: 'a:0,b:70000' })).to.deep.equal(['PGW_REDIS_NODES: port out of range in a:0', 'PGW_REDIS_NODES: port out of range in b:70000']);
    expect(only({ PGW_REDIS_URL: 'redis://x/db' })).to.deep.equal(['PGW_REDIS_URL: the path must be a database number (redis://host:6379/0)']);
    expect(only({ PGW_REDIS_MODE: 'replicated' })[0]).to.match(/^PGW_REDIS_MODE \(redis\.mode\): must be equal to one of the allowed values/);
    expect(only({ PGW_REDIS_MODE: 'cluster', PGW_REDIS_NODES: 'no-port' })[0]).to.match(/^PGW_REDIS_NODES \(redis\.nodes\.0\): must match pattern/);
  });

  it('takes a queue prefix with at most one non-empty hash tag', () => {
    expect(loadConfig({ env: { PGW_QUEUE_PREFIX: 'pgw-{eu}' } }).queuePrefix).to.equal('pgw-{eu}');
    for (const bad of ['{}', 'a{b', '{a}{b}', 'a:b', 'a*']) expect(problems(() => loadConfig({ env: { PGW_QUEUE_PREFIX: bad } }))[0], bad).to.match(/^PGW_QUEUE_PREFIX/);
  });

  it('redacts the sentinel password and the URL password in the dump', () => {
    const c = loadConfig({ env: { PGW_REDIS_MODE: 'sentinel', PGW_REDIS_NODES: 's:26379', PGW_REDIS_SENTINEL_NAME: 'm', PGW_REDIS_SENTINEL_PASSWORD: 'sentinel-secret', PGW_REDIS_URL: 'rediss://gw:data-secret@x' } });
    const dump = JSON.stringify(redactedConfig(c));
    expect(dump).not.to.include('sentinel-secret').and.not.include('data-secret');
    expect((redactedConfig(c).redis as Record<string, unknown>).sentinelPassword).to.equal('[set]');
  });
});

describe('config: the list of settings', () => {
  const list = SETTINGS;

  it('names each variable and each path once', () => {
    const envs = list.flatMap((s) => [s.env, s.file?.env]).filter((e): e is string => typeof e === 'string');
    expect(envs.filter((e, i) => envs.indexOf(e) !== i)).to.deep.equal([]);
    const paths = list.map((s) => s.path);
    expect(paths.filter((p, i) => paths.indexOf(p) !== i)).to.deep.equal([]);
  });

  it('puts each number, flag and choice read from its variable at its path', () => {
    const at = (o: unknown, dotted: string): unknown => dotted.split('.').reduce<unknown>((x, k) => (x as Record<string, unknown>)[k], o);
    const companions: Record<string, NodeJS.ProcessEnv> = { PGW_REDIS_MODE: { PGW_REDIS_NODES: 'a:7000' } }; // cluster needs nodes
    let checked = 0;
    for (const s of list) {
      const { kind, schema, default: def } = s.value;
      let value: unknown;
      if (kind === 'int' || kind === 'number') value = (def as number) + 1;
      else if (kind === 'bool') value = !def;
      else if (schema.enum) value = (schema.enum as string[]).find((v) => v !== def);
      if (value === undefined || s.env === null) continue;
      expect(at(loadConfig({ env: { ...companions[s.env], [s.env]: String(value) } }), s.path), s.env).to.equal(value);
      checked++;
    }
    expect(checked).to.be.greaterThan(60);
  });
});
