/**
 * The machine and software a benchmark ran on, for the header of RESULTS.md.
 */
import { promises as fsp, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runCmd } from './procs.js';
import { ROOT } from './gateway-env.js';
import { SSHD } from './openssh-server.js';
import { compiledEntry } from '../../bin/launch.js';

function pkgVersion(name: string): string {
  try {
    return (JSON.parse(readFileSync(path.join(ROOT, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return '?';
  }
}

async function firstLine(cmd: string, args: string[], fromStderr = false): Promise<string> {
  const r = await runCmd(cmd, args).catch(() => null);
  if (!r) return 'not installed';
  const text = fromStderr ? r.stderr : r.stdout.toString('utf8') || r.stderr;
  return text.split('\n').find((l) => l.trim())?.trim() ?? '?';
}

export async function describeMachine(): Promise<string[][]> {
  const cpuinfo = await fsp.readFile('/proc/cpuinfo', 'utf8').catch(() => '');
  const model = /model name\s*:\s*(.+)/.exec(cpuinfo)?.[1] ?? os.cpus()[0]?.model ?? '?';
  const osRelease = await fsp.readFile('/etc/os-release', 'utf8').catch(() => '');
  const distro = /PRETTY_NAME="([^"]+)"/.exec(osRelease)?.[1] ?? os.platform();
  const commit = (await runCmd('git', ['-C', ROOT, 'rev-parse', '--short', 'HEAD']).catch(() => null))?.stdout.toString('utf8').trim() ?? '?';
  const dirty = (await runCmd('git', ['-C', ROOT, 'status', '--porcelain', '--untracked-files=no']).catch(() => null))?.stdout.toString('utf8').trim();
  return [
    ['CPU', `${model} × ${os.cpus().length}`],
    ['memory', `${(os.totalmem() / 2 ** 30).toFixed(1)} GiB`],
    ['OS', `${distro}, Linux ${os.release()}`],
    ['Node', process.version],
    ['code', `${commit}${dirty ? ' (working tree has uncommitted changes)' : ''}`],
    ['`pgw` processes run', compiledEntry(ROOT) ? 'the compiled build (dist/, built at the start of the run); the stage-runner children of §2 and §5 run the sources through tsx' : 'the TypeScript sources through tsx (no matching build)'],
    ['ssh2 / openpgp / ajv / bullmq', `${pkgVersion('ssh2')} / ${pkgVersion('openpgp')} / ${pkgVersion('ajv')} / ${pkgVersion('bullmq')}`],
    ['OpenSSH client', await firstLine('ssh', ['-V'], true)],
    ['OpenSSH server', (await firstLine(SSHD, ['-V'], true)).replace(/^unknown option -- V\s*/, '')],
    ['GnuPG', await firstLine('gpg', ['--version'])],
    ['Redis', await firstLine('redis-server', ['--version'])],
  ];
}
