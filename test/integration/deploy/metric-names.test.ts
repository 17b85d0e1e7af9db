/**
 * The alert rules and the dashboard in deploy/ name only metrics a running gateway exports:
 * a real `pgw start`, its /metrics scraped as Prometheus would. A rule over a metric that
 * was renamed or never existed would stay silent forever; this fails instead.
 */
import { expect } from 'chai';
import { GatewayHarness } from '../../helpers/gateway-harness.js';
import { consoleGet } from '../../helpers/https-client.js';
import { PROMETHEUS_MADE, alertRules, dashboardExpressions, exportedNames, metricNames } from '../../helpers/deploy-files.js';

/** The value of an unlabelled sample in an exposition text, or null. */
function sample(text: string, name: string): number | null {
  const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
  return m ? Number(m[1]) : null;
}

describe('deploy: every metric in the alert rules and the dashboard is exported by the gateway', function () {
  this.timeout(120_000);
  let h: GatewayHarness;
  let text = '';

  before(async () => {
    h = await GatewayHarness.create();
    const p = await h.start('all');
    const r = await consoleGet(p.consolePort!, '/metrics');
    expect(r.status).to.equal(200);
    text = r.body;
  });
  after(async () => {
    await h?.cleanup();
  });

  it('alert rules', async () => {
    const exported = exportedNames(text);
    const rules = await alertRules();
    expect(rules.length).to.be.greaterThan(10);
    for (const { alert, expr } of rules) {
      const names = metricNames(expr);
      expect(names, alert).to.not.be.empty;
      for (const n of names) expect(exported.has(n) || PROMETHEUS_MADE.has(n), `${alert}: ${n} is not exported`).to.equal(true);
    }
  });

  it('dashboard panels', async () => {
    const exported = exportedNames(text);
    for (const { panel, expr } of await dashboardExpressions()) {
      for (const n of metricNames(expr)) expect(exported.has(n) || PROMETHEUS_MADE.has(n), `panel "${panel}": ${n} is not exported`).to.equal(true);
    }
  });

  it('the gauges the rules need for disk, audit chain and stuck batches carry values', () => {
    expect(sample(text, 'pgw_audit_chain_ok')).to.equal(1);
    expect(sample(text, 'pgw_audit_chain_checked_timestamp_seconds')).to.be.within(Date.now() / 1000 - 300, Date.now() / 1000 + 5);
    expect(sample(text, 'pgw_data_dir_free_bytes')).to.be.greaterThan(0);
    expect(sample(text, 'pgw_data_dir_size_bytes')).to.be.greaterThanOrEqual(sample(text, 'pgw_data_dir_free_bytes')!);
    expect(sample(text, 'pgw_batch_oldest_unfinished_seconds')).to.equal(0);
  });
});
