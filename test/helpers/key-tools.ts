/** Key-lifecycle test helpers: the `pgw` command against a harness, and gpg sealing to a chosen gateway key. */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { gpg, type GatewayHarness, type TestPartner } from './gateway-harness.js';
import { sampleBatch } from '../../schemas/testing/sample-records.js';

const run = promisify(execFile);
const PGW = path.resolve(import.meta.dirname, '../../bin/pgw.js');

/** Run the `pgw` command against the harness's data dir. */
export async function pgwCli(h: GatewayHarness, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await run(process.execPath, [PGW, ...args], { env: h.env, timeout: 60_000 });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

/** Encrypt to a chosen gateway key and sign with the partner's key, as a partner's gpg does. */
export async function sealTo(p: TestPartner, recipient: string, name: string, signer = p.fingerprint): Promise<string> {
  const b = sampleBatch(2, new Date());
  b.reference = `ref-${name}`;
  const input = path.join(p.gpgHome, `${name}.plain`);
  const out = path.join(p.gpgHome, name);
  await fsp.writeFile(input, JSON.stringify(b));
  await gpg(p.gpgHome, ['--trust-model', 'always', '-r', recipient, '-u', signer, '-o', out, '--sign', '--encrypt', input]);
  await fsp.rm(input);
  return out;
}

