/**
 * Start the benchmark's own TypeScript child scripts (stage runner, validation bench) the
 * way bin/pgw.js runs the product: Node with pgw's flags (nodeFlags(): the heap sizes a
 * worker has) + tsx, no build step.
 */
import path from 'node:path';
import { ROOT } from './gateway-env.js';
import { mustRun, nodeFlags } from './procs.js';

/** Run `bench/<script>` with `args` and parse the last stdout line as JSON. */
export async function runChildJson<T>(script: string, args: string[], env: NodeJS.ProcessEnv, timeoutMs = 900_000): Promise<T> {
  const r = await mustRun(process.execPath, [...nodeFlags(), '--import', 'tsx', path.join(ROOT, 'bench', script), ...args], { env, cwd: ROOT, timeoutMs });
  const last = r.stdout.toString('utf8').trim().split('\n').pop() ?? '';
  try {
    return JSON.parse(last) as T;
  } catch {
    throw new Error(`${script}: no JSON result: ${last.slice(0, 200)} ${r.stderr.slice(-500)}`);
  }
}
