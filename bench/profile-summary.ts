/**
 * Summarise a V8 `.cpuprofile` (from `node --cpu-prof`, or BENCH_CPU_PROF=<dir>): idle and
 * GC share, then the functions with the most self time, and self time per package/file.
 *
 *   node --import tsx bench/profile-summary.ts <file.cpuprofile> [top=25] [from-to seconds]
 *
 * Without a window it also prints a timeline (busy % per second) to pick one, e.g. the
 * seconds of an upload in a whole-process profile of `pgw start`: `… 30 4.5-9`.
 */
import { readFileSync } from 'node:fs';

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: Node[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

export function summariseProfile(file: string, top = 25, window?: [number, number]): string[] {
  const p = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  const idleIds = new Set(p.nodes.filter((n) => n.callFrame.functionName === '(idle)').map((n) => n.id));
  const buckets: { busy: number; all: number }[] = [];
  let t = 0;
  let total = 0;
  for (let i = 0; i < p.samples.length; i++) {
    const d = p.timeDeltas[i] ?? 0;
    t += d;
    const sec = Math.floor(t / 1e6);
    buckets[sec] ??= { busy: 0, all: 0 };
    buckets[sec].all += d;
    if (!idleIds.has(p.samples[i]!)) buckets[sec].busy += d;
    if (window && (t < window[0] * 1e6 || t > window[1] * 1e6)) continue;
    total += d;
    self.set(p.samples[i]!, (self.get(p.samples[i]!) ?? 0) + d);
  }
  const fn = new Map<string, number>();
  const file2 = new Map<string, number>();
  for (const [id, us] of self) {
    const n = byId.get(id)!;
    const url = n.callFrame.url.replace(/^file:\/\//, '').replace(/.*node_modules\//, 'nm:').replace(/^\/work\/main\//, '');
    const name = `${n.callFrame.functionName || '(anonymous)'} ${url ? `${url.split('/').slice(-2).join('/')}:${n.callFrame.lineNumber + 1}` : ''}`.trim();
    fn.set(name, (fn.get(name) ?? 0) + us);
    const group = url.startsWith('nm:') ? url.slice(3).split('/').slice(0, url.slice(3).startsWith('@') ? 2 : 1).join('/') : url.startsWith('node:') ? 'node:*' : url ? url : n.callFrame.functionName;
    file2.set(group, (file2.get(group) ?? 0) + us);
  }
  const pct = (us: number) => `${((100 * us) / total).toFixed(1).padStart(5)} %`;
  const lines = [`${file}: ${(total / 1e6).toFixed(2)} s profiled${window ? ` (window ${window[0]}–${window[1]} s)` : ''}`];
  if (!window) {
    lines.push(`-- busy % per second: ${buckets.map((b, i) => `${i}:${b ? Math.round((100 * b.busy) / Math.max(1, b.all)) : 0}`).join(' ')}`);
  }
  lines.push('-- self time by function');
  for (const [k, v] of [...fn].sort((a, b) => b[1] - a[1]).slice(0, top)) lines.push(`${pct(v)}  ${k}`);
  lines.push('-- self time by package / file');
  for (const [k, v] of [...file2].sort((a, b) => b[1] - a[1]).slice(0, 15)) lines.push(`${pct(v)}  ${k}`);
  return lines;
}

if (process.argv[1] && import.meta.filename === process.argv[1]) {
  const [file, top, win] = process.argv.slice(2);
  if (!file) {
    console.error('usage: profile-summary <file.cpuprofile> [top] [from-to seconds]');
    process.exit(2);
  }
  const w = win?.split('-').map(Number) as [number, number] | undefined;
  console.log(summariseProfile(file, Number(top ?? 25), w).join('\n'));
}
