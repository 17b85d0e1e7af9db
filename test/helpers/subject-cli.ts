/**
 * `pgw subject <args>` for a person, as an operator runs it: the BSN on argv. Returns stdout;
 * rejects with the child's stderr on a non-zero exit.
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import type { GatewayHarness } from './gateway-harness.js';

const PGW = path.resolve(import.meta.dirname, '../../bin/pgw.js');

export async function subjectCli(h: GatewayHarness, args: string[], bsn: string): Promise<string> {
  const [cmd, ...rest] = args;
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [PGW, 'subject', cmd!, '--bsn', bsn, ...rest], { env: h.env }, (err, stdout, stderr) => {
      if (err) reject(Object.assign(err, { stdout, stderr }));
      else resolve(stdout);
    });
  });
}
