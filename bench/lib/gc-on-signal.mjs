// Preloaded (NODE_OPTIONS="--expose-gc --import=…/gc-on-signal.mjs") into a `pgw` process
// whose memory per session §6 measures: SIGUSR2 runs a full garbage collection, so the
// RSS read afterwards counts live memory, not garbage the heap has not collected yet, and
// writes process.memoryUsage() (live heap, external, array buffers) to BENCH_MEM_FILE.
import { writeFileSync } from 'node:fs';

if (typeof globalThis.gc === 'function') {
  process.on('SIGUSR2', () => {
    globalThis.gc();
    if (process.env.BENCH_MEM_FILE) writeFileSync(process.env.BENCH_MEM_FILE, JSON.stringify(process.memoryUsage()));
  });
}
