/**
 * The monitoring files in deploy/ as tests read them: the PromQL expressions of the alert
 * rules and of the Grafana dashboard, the metric names those expressions use, and promtool.
 *
 * Rule expressions are read line by line (`expr: …`, one line each — alerts.yml says so), not
 * with a YAML parser; the tests compare their count with the number of rules promtool finds,
 * so a rule written another way cannot slip past unread.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { promises as fsp } from 'node:fs';
import path from 'node:path';

const run = promisify(execFile);
export const DEPLOY = path.resolve(import.meta.dirname, '../../deploy');
export const ALERTS_FILE = path.join(DEPLOY, 'prometheus', 'alerts.yml');
export const ALERT_TESTS_FILE = path.join(DEPLOY, 'prometheus', 'alerts.test.yml');
export const DASHBOARD_FILE = path.join(DEPLOY, 'grafana', 'pgw.json');

/** Series Prometheus makes itself, not the gateway. */
export const PROMETHEUS_MADE = new Set(['up', 'ALERTS', 'ALERTS_FOR_STATE']);

export interface AlertRule { alert: string; expr: string }

/** The alert rules of alerts.yml, name and one-line expression each. */
export async function alertRules(file = ALERTS_FILE): Promise<AlertRule[]> {
  const lines = (await fsp.readFile(file, 'utf8')).split('\n');
  const out: AlertRule[] = [];
  let current: string | null = null;
  for (const line of lines) {
    const a = /^\s*-\s*alert:\s*(\S+)\s*$/.exec(line);
    if (a) { current = a[1]!; continue; }
    const e = /^\s*expr:\s*(.*)$/.exec(line);
    if (e) {
      const expr = e[1]!.trim();
      if (!current) throw new Error(`expr without an alert name: ${expr}`);
      if (expr === '' || expr === '|' || expr === '>' || expr.startsWith('|') || expr.startsWith('>')) throw new Error(`${current}: keep expr on one line`);
      out.push({ alert: current, expr: expr.replace(/^(['"])(.*)\1$/, '$2') });
      current = null;
    }
  }
  return out;
}

/** Every target expression of the dashboard, with the panel it belongs to. */
export async function dashboardExpressions(file = DASHBOARD_FILE): Promise<{ panel: string; expr: string }[]> {
  const d = JSON.parse(await fsp.readFile(file, 'utf8')) as { panels: { title: string; targets?: { expr?: string }[]; panels?: unknown[] }[] };
  const out: { panel: string; expr: string }[] = [];
  const walk = (ps: typeof d.panels) => {
    for (const p of ps) {
      for (const t of p.targets ?? []) if (t.expr) out.push({ panel: p.title, expr: t.expr });
      if (Array.isArray(p.panels)) walk(p.panels as typeof d.panels);
    }
  };
  walk(d.panels);
  return out;
}

/** Grafana's own variables replaced by values PromQL accepts (for promtool's syntax check). */
export function withoutGrafanaVariables(expr: string): string {
  return expr.replace(/\$__rate_interval|\$__interval|\$__range/g, '5m');
}

const KEYWORDS = new Set(['and', 'or', 'unless', 'by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'offset', 'bool', 'inf', 'nan']);

/** The metric names a PromQL expression selects (not functions, keywords or label names). */
export function metricNames(expr: string): string[] {
  let s = expr.replace(/"(?:[^"\\]|\\.)*"/g, '""').replace(/'(?:[^'\\]|\\.)*'/g, "''").replace(/`[^`]*`/g, '``');
  s = s.replace(/\{[^}]*\}/g, ' ');
  s = s.replace(/\[[^\]]*\]/g, ' ');
  s = s.replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ');
  s = s.replace(/\boffset\s+-?[0-9a-zA-Z]+/g, ' ');
  const names = new Set<string>();
  for (const m of s.matchAll(/[A-Za-z_:][A-Za-z0-9_:]*/g)) {
    const before = s[m.index - 1];
    if (before && /[0-9.]/.test(before)) continue; // 1e9, 0x1f
    if (s.slice(m.index + m[0].length).trimStart().startsWith('(')) continue; // function or aggregation
    if (KEYWORDS.has(m[0].toLowerCase())) continue;
    names.add(m[0]);
  }
  return [...names].sort();
}

/**
 * The metric families a /metrics text declares (`# TYPE name kind`), with the series names
 * a histogram or summary adds (_bucket, _sum, _count).
 */
export function exportedNames(exposition: string): Set<string> {
  const out = new Set<string>();
  for (const m of exposition.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
    const [, name, kind] = m as unknown as [string, string, string];
    out.add(name);
    if (kind === 'histogram') for (const sfx of ['_bucket', '_sum', '_count']) out.add(name + sfx);
    if (kind === 'summary') for (const sfx of ['_sum', '_count']) out.add(name + sfx);
  }
  return out;
}

/** Run promtool; resolves with its exit code and output (never throws on a non-zero exit). */
export async function promtool(args: string[], cwd = DEPLOY): Promise<{ code: number; out: string }> {
  try {
    const r = await run('promtool', args, { cwd, timeout: 60_000 });
    return { code: 0, out: r.stdout + r.stderr };
  } catch (err) {
    const e = err as { code?: number | string; stdout?: string; stderr?: string };
    if (e.code === 'ENOENT') throw new Error('promtool is not installed (Debian package prometheus)');
    return { code: typeof e.code === 'number' ? e.code : 1, out: `${e.stdout ?? ''}${e.stderr ?? ''}` };
  }
}
