/**
 * Settings shared by every section: where temp files go, how many runs, and the sizes.
 * `BENCH_QUICK=1` shrinks everything for a smoke test of the suite itself (its numbers
 * mean nothing); `BENCH_RUNS` overrides the number of runs; `BENCH_ONLY=sftp,decrypt`
 * runs a subset.
 */
import { MiB } from './stats.js';

export const CIPHER = 'aes128-gcm@openssh.com';

export interface BenchContext {
  /** Temp dir for this benchmark run (deleted at the end). */
  root: string;
  quick: boolean;
  /** Runs per figure (≥ 5 unless BENCH_RUNS says otherwise). */
  runs: number;
  /** Runs for the slow cases (512 MiB decrypt). */
  bigRuns: number;
  sizes: {
    sftp: { label: string; bytes: number }[];
    smallFiles: number;
    smallFileBytes: number;
    decrypt: { label: string; bytes: number }[];
    e2eBatches: number;
    e2eRecords: number;
    /** Partners uploading at once, one phase each (the first is the single-partner latency phase). */
    e2ePhases: number[];
    memoryBatchBytes: number;
    validateRecords: number;
  };
  log(msg: string): void;
}

export function makeContext(root: string, log: (msg: string) => void): BenchContext {
  const quick = process.env.BENCH_QUICK === '1';
  const runs = Number(process.env.BENCH_RUNS ?? (quick ? 2 : 5));
  return {
    root,
    quick,
    runs,
    bigRuns: quick ? 1 : Math.min(runs, 3),
    sizes: quick
      ? {
        sftp: [{ label: '1 MiB', bytes: MiB }, { label: '8 MiB', bytes: 8 * MiB }, { label: '32 MiB', bytes: 32 * MiB }],
        smallFiles: 100,
        smallFileBytes: 4096,
        decrypt: [{ label: '8 MiB', bytes: 8 * MiB }, { label: '32 MiB', bytes: 32 * MiB }],
        e2eBatches: 30,
        e2eRecords: 100,
        e2ePhases: [1, 4, 8],
        memoryBatchBytes: 64 * MiB,
        validateRecords: 20_000,
      }
      : {
        sftp: [{ label: '1 MiB', bytes: MiB }, { label: '64 MiB', bytes: 64 * MiB }, { label: '512 MiB', bytes: 512 * MiB }],
        smallFiles: 1000,
        smallFileBytes: 4096,
        decrypt: [{ label: '64 MiB', bytes: 64 * MiB }, { label: '512 MiB', bytes: 512 * MiB }],
        e2eBatches: 200,
        e2eRecords: 100,
        e2ePhases: [1, 16, 64],
        memoryBatchBytes: 1024 * MiB,
        validateRecords: 200_000,
      },
    log,
  };
}
