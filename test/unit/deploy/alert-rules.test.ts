// test-pass: once
/**
 * deploy/prometheus/alerts.yml under `promtool`: the rules load, their unit cases
 * (alerts.test.yml) pass, every alert has a case where it fires and one where it must not,
 * and a rule made wrong fails its cases. The dashboard's expressions are valid PromQL.
 * Whether the metrics they name exist is checked against a running gateway in
 * test/integration/deploy/metric-names.test.ts.
 */
import { expect } from 'chai';
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  ALERTS_FILE, ALERT_TESTS_FILE, alertRules, dashboardExpressions, metricNames, promtool, withoutGrafanaVariables,
} from '../../helpers/deploy-files.js';

describe('deploy: Prometheus alert rules and Grafana dashboard (promtool)', function () {
  this.timeout(60_000);
  let tmp: string;

  before(async () => {
    tmp = await fsp.mkdtemp(path.join(os.tmpdir(), 'pgw-rules-'));
  });
  after(async () => {
    await fsp.rm(tmp, { recursive: true, force: true });
  });

  it('alerts.yml loads, and every rule was read by the test helpers', async () => {
    const r = await promtool(['check', 'rules', ALERTS_FILE]);
    expect(r.code, r.out).to.equal(0);
    const found = Number(/SUCCESS: (\d+) rules found/.exec(r.out)?.[1]);
    const rules = await alertRules();
    expect(rules.length).to.equal(found);
    expect(new Set(rules.map((x) => x.alert)).size, 'alert names are unique').to.equal(rules.length);
  });

  it('the promtool unit cases pass', async () => {
    const r = await promtool(['test', 'rules', path.basename(ALERT_TESTS_FILE)], path.dirname(ALERT_TESTS_FILE));
    expect(r.code, r.out).to.equal(0);
    expect(r.out).to.match(/SUCCESS/);
  });

  it('every alert has a case where it fires and one where it must not', async () => {
    const cases = (await fsp.readFile(ALERT_TESTS_FILE, 'utf8')).split(/^\s*- eval_time:/m).slice(1);
    const fires = new Set<string>();
    const quiet = new Set<string>();
    for (const c of cases) {
      const name = /alertname:\s*(\S+)/.exec(c)?.[1];
      if (!name) continue;
      if (/exp_alerts:\s*\[\]/.test(c)) quiet.add(name);
      else if (/exp_labels:/.test(c)) fires.add(name);
    }
    for (const { alert } of await alertRules()) {
      expect(fires.has(alert), `${alert}: no case where it fires`).to.equal(true);
      expect(quiet.has(alert), `${alert}: no case where it must stay quiet`).to.equal(true);
    }
  });

  // The cases are only worth something if a wrong rule fails them: run them against rules
  // with one mistake each (each case file points at its own copy).
  const mutations: [string, string, string][] = [
    ['queue backlog counting each gateway\'s copy of the counts', 'sum by (queue) (max without (instance) (pgw_queue_jobs{state=~"waiting|prioritized"}))', 'sum by (queue) (pgw_queue_jobs{state=~"waiting|prioritized"})'],
    ['audit chain alert on the wrong value', 'expr: pgw_audit_chain_ok == 0', 'expr: pgw_audit_chain_ok == 1'],
    ['processing failures without the outage guard', ' and on() (max(up{job="pgw"} offset 1h) == 1)', ''],
    ['key expiry threshold in hours instead of days', '< 14 * 86400 > 0', '< 14 * 3600 > 0'],
  ];
  for (const [what, from, to] of mutations) {
    it(`a rule made wrong fails its cases: ${what}`, async () => {
      const rules = await fsp.readFile(ALERTS_FILE, 'utf8');
      expect(rules.includes(from), `mutation source not found: ${from}`).to.equal(true);
      const dir = await fsp.mkdtemp(path.join(tmp, 'm-'));
      await fsp.writeFile(path.join(dir, 'alerts.yml'), rules.replace(from, to));
      await fsp.copyFile(ALERT_TESTS_FILE, path.join(dir, 'alerts.test.yml'));
      expect((await promtool(['check', 'rules', 'alerts.yml'], dir)).code, 'the mutated rules still load').to.equal(0);
      const r = await promtool(['test', 'rules', 'alerts.test.yml'], dir);
      expect(r.code, r.out).to.not.equal(0);
    });
  }

  it('every dashboard expression is valid PromQL and names at least one metric', async () => {
    const exprs = await dashboardExpressions();
    expect(exprs.length).to.be.greaterThan(10);
    const file = path.join(tmp, 'dashboard-rules.yml');
    const lines = ['groups:', '  - name: dashboard', '    rules:'];
    exprs.forEach((e, i) => {
      expect(metricNames(e.expr), e.panel).to.not.be.empty;
      lines.push(`      - record: dashboard:panel_${i}`, `        expr: ${JSON.stringify(withoutGrafanaVariables(e.expr))}`);
    });
    await fsp.writeFile(file, `${lines.join('\n')}\n`);
    const r = await promtool(['check', 'rules', file]);
    expect(r.code, r.out).to.equal(0);
  });

  it('metric names are read out of PromQL as Prometheus reads them', () => {
    expect(metricNames('sum by (queue) (max without (instance) (pgw_queue_jobs{state=~"waiting|prioritized"})) > 100')).to.deep.equal(['pgw_queue_jobs']);
    expect(metricNames('histogram_quantile(0.95, sum by (le, stage) (rate(pgw_stage_latency_seconds_bucket[$__rate_interval])))')).to.deep.equal(['pgw_stage_latency_seconds_bucket']);
    expect(metricNames('pgw_data_dir_free_bytes / pgw_data_dir_size_bytes < 1e-1')).to.deep.equal(['pgw_data_dir_free_bytes', 'pgw_data_dir_size_bytes']);
    expect(metricNames('a - b offset 1h > 0 or (c unless d and on() (max(up{job="pgw"} offset 1h) == 1))')).to.deep.equal(['a', 'b', 'c', 'd', 'up']);
    expect(metricNames('time() - max(x) > 3600')).to.deep.equal(['x']);
    expect(metricNames('sum(rate(pgw_http_requests_total{route="by (x)"}[5m])) by (status)')).to.deep.equal(['pgw_http_requests_total']);
  });
});
