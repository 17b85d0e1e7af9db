/**
 * Memory of other processes from /proc/<pid>/status: VmRSS now, VmHWM (the peak resident
 * set size since the process started — the kernel's own high-water mark, so a short
 * spike between two samples is not missed).
 */
import { promises as fsp } from 'node:fs';

export interface RssSample {
  /** Date.now() of the sample (comparable with ledger timestamps). */
  at: number;
  rssKiB: number;
  hwmKiB: number;
}

export async function readRss(pid: number): Promise<RssSample | null> {
  const s = await fsp.readFile(`/proc/${pid}/status`, 'utf8').catch(() => null);
  if (!s) return null;
  const num = (k: string) => Number(new RegExp(`${k}:\\s+(\\d+) kB`).exec(s)?.[1] ?? NaN);
  return { at: Date.now(), rssKiB: num('VmRSS'), hwmKiB: num('VmHWM') };
}

/** Sample `pid` every `everyMs` until stopped. */
export class RssSampler {
  readonly samples: RssSample[] = [];
  private timer: NodeJS.Timeout;

  constructor(readonly pid: number, everyMs = 200) {
    this.timer = setInterval(() => {
      void readRss(pid).then((s) => {
        if (s) this.samples.push(s);
      });
    }, everyMs);
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** Largest sampled VmRSS between two Date.now() instants (KiB), NaN if none. */
  peakBetween(from: number, to: number): number {
    let m = NaN;
    for (const s of this.samples) if (s.at >= from && s.at <= to && !(s.rssKiB <= m)) m = s.rssKiB;
    return m;
  }
}
