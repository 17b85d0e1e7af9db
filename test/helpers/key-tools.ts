/** Key-lifecycle test helpers: the `pgw` command against a harness, and gpg sealing to a chosen gateway key. */
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { gpg, type GatewayHarness, type TestPartner } from './gateway-harness.js';
import { sampleBatch } from '../../schemas/testing/sample-records.js';
import { runPgw, type PgwResult } from './pgw-cli.js';

/** Run the `pgw` command against the harness's data dir. */
export function pgwCli(h: GatewayHarness, args: string[]): Promise<PgwResult> {
  return runPgw(args, h.env);
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

