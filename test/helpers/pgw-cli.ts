/** Run the real `pgw` executable as an operator would: exit code, stdout, stderr. */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import path from 'node:path';
import { TEST_REDIS_URL } from './databases.js';

const run = promisify(execFile);
const PGW = path.resolve(import.meta.dirname, '../../bin/pgw.js');

export interface PgwResult { code: number; stdout: string; stderr: string }

/**
 * `env` is the whole environment of the command (PATH, HOME and the suite's Redis are added
 * unless it sets them). The command is killed after `timeoutMs` (its code is then null).
 */
export async function runPgw(args: string[], env: Record<string, string | undefined>, timeoutMs = 60_000): Promise<PgwResult> {
  try {
    const r = await run(process.execPath, [PGW, ...args], {
      env: { PATH: process.env.PATH, HOME: process.env.HOME, PGW_REDIS_URL: TEST_REDIS_URL, ...env }, timeout: timeoutMs,
    });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}
