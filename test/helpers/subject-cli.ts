/**
 * `pgw subject …` as an operator runs it: the BSN on stdin (`--bsn -`), never on argv, under
 * a request of the register. Returns stdout; rejects with the child's stderr on a non-zero
 * exit.
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import type { GatewayHarness } from './gateway-harness.js';

const PGW = path.resolve(import.meta.dirname, '../../bin/pgw.js');

function pgwIn(h: GatewayHarness, args: string[], stdin: string | null, env: Record<string, string> = {}): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = execFile(process.execPath, [PGW, ...args], { env: { ...h.env, ...env } }, (err, stdout, stderr) => {
      if (err) reject(Object.assign(err, { stdout, stderr }));
      else resolve({ stdout, stderr });
    });
    child.stdin!.end(stdin ?? '');
  });
}

/** `pgw subject <cmd> --request <request> --bsn - <rest>` with the BSN on stdin. */
export async function subjectCli(h: GatewayHarness, args: string[], bsn: string, request: string, env: Record<string, string> = {}): Promise<string> {
  const [cmd, ...rest] = args;
  return (await pgwIn(h, ['subject', cmd!, '--request', request, '--bsn', '-', ...rest], `${bsn}\n`, env)).stdout;
}

/** Open a request of `kind`; returns its id. */
export async function openRequest(h: GatewayHarness, kind: 'access' | 'correction' | 'erasure', extra: string[] = []): Promise<string> {
  const r = JSON.parse((await pgwIn(h, ['subject', 'request', 'open', '--kind', kind, '--json', ...extra], null)).stdout) as { id: string };
  return r.id;
}

/** Any `pgw` command against the harness's gateway (nothing on stdin); its stdout parsed as JSON. */
export async function pgwJson(h: GatewayHarness, args: string[]): Promise<unknown> {
  return JSON.parse((await pgwIn(h, args, null)).stdout);
}

export { pgwIn };
