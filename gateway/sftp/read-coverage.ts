/**
 * Which byte ranges of a file a client has read. Pipelined READs complete out of order, so
 * "fully downloaded" means the union of served ranges covers `[0, size)`.
 */
export class ReadCoverage {
  /** Sorted, non-overlapping, non-adjacent half-open ranges. */
  private ranges: [number, number][] = [];
  /** A READ reached end-of-file (what "fully read" means for an empty file). */
  sawEof = false;

  add(start: number, end: number): void {
    if (!(end > start)) return;
    const merged: [number, number][] = [];
    let s = start;
    let e = end;
    let placed = false;
    for (const [a, b] of this.ranges) {
      if (b < s) merged.push([a, b]);
      else if (a > e) {
        if (!placed) {
          merged.push([s, e]);
          placed = true;
        }
        merged.push([a, b]);
      } else {
        s = Math.min(s, a);
        e = Math.max(e, b);
      }
    }
    if (!placed) merged.push([s, e]);
    this.ranges = merged;
  }

  /** True when `[0, size)` has been read completely (an empty file: once EOF was read). */
  covers(size: number): boolean {
    if (size === 0) return this.sawEof;
    const first = this.ranges[0];
    return first !== undefined && first[0] === 0 && first[1] >= size;
  }
}
