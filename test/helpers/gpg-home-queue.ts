/**
 * One GnuPG process at a time per home, for every helper that runs `gpg` or `gpgconf` in a
 * home (pgp-fixtures, gateway-harness, interop-tools, the bench's gateway-env).
 *
 * Why: gpg rewrites `pubring.kbx` by copying it to `pubring.kbx.tmp` and renaming, and takes
 * its file lock only around parts of that. A gpg beside one that writes the keybox can read a
 * half-written or vanished keybox: two `--quick-gen-key` at once in a fresh home fail with
 * `pubring.kbx: copy to … failed: Invalid packet` about once in 60 tries on a 2-core machine,
 * and a `--sign --encrypt` beside an `--import` with `keydb_search failed` about once in 3.
 * Queueing here, not at the call sites, means no caller — a `Promise.all`, cells of a matrix
 * sharing a partner, uploads in flight — can start two.
 *
 * The queue is per process: every home a test or bench uses is made by that process
 * (mkdtemp), so no other process runs gpg in it.
 */
import { execFile } from 'node:child_process';
import path from 'node:path';

const tails = new Map<string, Promise<void>>();

/** Run `task` once every gpg call queued before it for `home` has ended (call order kept). */
export function inGpgHome<T>(home: string, task: () => Promise<T>): Promise<T> {
  const key = path.resolve(home);
  const run = (tails.get(key) ?? Promise.resolve()).then(task);
  const tail = run.then(() => {}, () => {});
  tails.set(key, tail);
  // Forget a home whose queue ran empty (the map would otherwise keep every home of a run).
  void tail.then(() => {
    if (tails.get(key) === tail) tails.delete(key);
  });
  return run;
}

/**
 * Stop every daemon gpg started for `home` (gpg-agent, and dirmngr should one run), after the
 * gpg calls queued before, so that no call of this home is cut off and no agent outlives
 * the home. Never rejects: a home without daemons is fine.
 */
export function stopGpgDaemons(home: string): Promise<void> {
  return inGpgHome(home, () => new Promise<void>((resolve) => {
    execFile('gpgconf', ['--homedir', home, '--kill', 'all'], () => resolve());
  }));
}
