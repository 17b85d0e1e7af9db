/**
 * Partners also use lftp and paramiko (and WinSCP, whose upload pattern — .filepart, rename,
 * SETSTAT — is covered in upload.test.ts). Each client here runs against the real server.
 * A client that is not installed is skipped with the reason printed (Debian packages
 * `lftp` and `python3-paramiko`; DEPENDENCIES.md lists them for test machines).
 */
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { SftpHarness, GATEWAY_KEYS_TEXT, type TestPartner } from '../../helpers/sftp-harness.js';

const run = promisify(execFile);
const sha256 = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

async function has(cmd: string, args: string[]): Promise<boolean> {
  return run(cmd, args, { timeout: 10_000 }).then(() => true, () => false);
}

const PARAMIKO_SCRIPT = `
import io, sys, paramiko
port, key, local = int(sys.argv[1]), sys.argv[2], sys.argv[3]
t = paramiko.Transport(('127.0.0.1', port))
t.connect(username='acme', pkey=paramiko.Ed25519Key.from_private_key_file(key))
s = paramiko.SFTPClient.from_transport(t)
print('root=' + ','.join(sorted(s.listdir('/'))))
s.put(local, '/inbox/pm.json.pgp')  # paramiko stats the file after upload (confirm=True)
s.putfo(io.BytesIO(b'staged by paramiko'), '/inbox/pm2.json.pgp.part')
s.rename('/inbox/pm2.json.pgp.part', '/inbox/pm2.json.pgp')
print('key=' + s.open('/keys/gateway.asc').read().decode())
try:
    s.open('/inbox/pm.json.pgp', 'r')
    print('read=allowed')
except PermissionError as e:
    print('read=denied ' + str(e))
s.close(); t.close()
`;

describe('other partner clients', function () {
  let h: SftpHarness;
  let p: TestPartner;

  before(async () => {
    h = await SftpHarness.start();
    p = await h.addPartner('acme');
  });
  after(async () => {
    await h?.close();
  });

  it('lftp 4.x: list, upload, download the gateway key', async function () {
    if (!(await has('lftp', ['--version']))) {
      // Reason: lftp is not installed on this machine (Debian package `lftp`; .ci/run installs it).
      this.skip();
    }
    const content = Buffer.from('uploaded with lftp');
    const local = await h.localFile('lf.json.pgp', content);
    const out = path.join(h.dir, 'local', 'gw-lftp.asc');
    const connect = [
      `set sftp:connect-program "ssh -a -x -F /dev/null -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o IdentitiesOnly=yes -o BatchMode=yes -i ${p.key}"`,
      'set net:max-retries 1', 'set net:timeout 15',
      `open -u acme, -p ${h.port} sftp://127.0.0.1`,
    ].join('; ');
    const r = await run('lftp', ['-c', `${connect}; cls -1 /; cd /inbox; put ${local}; get /keys/gateway.asc -o ${out}`], { timeout: 60_000 });
    expect(r.stdout.split('\n').filter(Boolean).map((l) => l.replace(/\/$/, '').replace(/^\//, ''))).to.deep.equal(['inbox', 'keys', 'outbox']);
    expect(await fsp.readFile(out, 'utf8')).to.equal(GATEWAY_KEYS_TEXT);
    const rows = (await h.batches('acme')).filter((b) => b.file_name === 'lf.json.pgp');
    expect(rows.map((b) => b.sha256)).to.deep.equal([sha256(content)]);
  });

  it('paramiko 2.12: put (with its stat check), temp-name upload + rename, read the key, no read-back', async function () {
    if (!(await has('/usr/bin/python3', ['-c', 'import paramiko']))) {
      // Reason: paramiko is not installed on this machine (Debian package `python3-paramiko`; .ci/run installs it).
      this.skip();
    }
    const content = Buffer.from('uploaded with paramiko');
    const local = await h.localFile('pm.json.pgp', content);
    const script = path.join(h.dir, 'pm.py');
    await fsp.writeFile(script, PARAMIKO_SCRIPT);
    const r = await run('/usr/bin/python3', [script, String(h.port), p.key, local], { timeout: 60_000 });
    expect(r.stdout).to.include('root=inbox,keys,outbox');
    expect(r.stdout).to.include(`key=${GATEWAY_KEYS_TEXT}`);
    expect(r.stdout).to.match(/read=denied .*upload\.permission_denied/);
    const rows = await h.batches('acme');
    expect(rows.filter((b) => b.file_name === 'pm.json.pgp').map((b) => b.sha256)).to.deep.equal([sha256(content)]);
    expect(rows.filter((b) => b.file_name === 'pm2.json.pgp')).to.have.length(1);
    expect(await h.stagedFiles('acme')).to.deep.equal([]);
  });
});
