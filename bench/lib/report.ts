/**
 * What a benchmark section hands back, and the markdown helpers to print it.
 *
 * Glossary:
 * - **section**: one numbered item of the issue (SFTP ingest, decrypt, e2e, memory,
 *   validation); its `lines` are ready-made markdown.
 * - **target check**: one figure compared with its target (met, missed, or unknown when
 *   the figure could not be measured).
 */
import { fmt, fmtSummary, summarize, type Summary } from './stats.js';

export interface TargetCheck {
  what: string;
  value: string;
  target: string;
  met: boolean | null;
}

export interface SectionResult {
  title: string;
  lines: string[];
  targets: TargetCheck[];
  /** Set when the section failed; its lines say how far it got. */
  error?: string;
  seconds?: number;
  /** 1-min load average at the start and end of the section (other users share the machine). */
  load?: string;
}

export function table(header: string[], rows: string[][]): string[] {
  return [
    `| ${header.join(' | ')} |`,
    `| ${header.map(() => '---').join(' | ')} |`,
    ...rows.map((r) => `| ${r.join(' | ')} |`),
  ];
}

/** `x (a–b)` for a list of values, or n/a. */
export function cell(values: readonly number[], digits = 1): string {
  return fmtSummary(summarize(values), digits);
}

export function ratioCell(ratios: readonly number[]): string {
  const s: Summary = summarize(ratios);
  if (s.n === 0) return 'n/a';
  return `${fmtSummary(s, 2)}×`;
}

export function metMark(met: boolean | null): string {
  return met === null ? 'not measured' : met ? 'met' : '**missed**';
}

export { fmt };
