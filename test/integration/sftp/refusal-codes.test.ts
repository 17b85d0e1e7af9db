/**
 * What a partner is refused over SFTP carries its registered code all the way: in the status
 * reply, in the gateway's log line (at the default level) and in the metrics, counted by
 * code. A real `pgw start` and OpenSSH's sftp; /metrics scraped as Prometheus would.
 */
import { expect } from 'chai';
import { GatewayHarness, tryJson, type PgwProcess, type TestPartner } from '../../helpers/gateway-harness.js';
import { waitFor } from '../../helpers/wait-for.js';
import { consoleGet } from '../../helpers/https-client.js';

/** The sample of `name` with exactly the label `code="…"`, or 0 when absent. */
function countFor(text: string, name: string, code: string): number {
  const m = new RegExp(`^${name}\\{code="${code.replace(/\./g, '\\.')}"\\} (\\S+)$`, 'm').exec(text);
  return m ? Number(m[1]) : 0;
}

describe('SFTP refusals: the code reaches the log line and the metrics', function () {
  this.timeout(120_000);
  let h: GatewayHarness;
  let gw: PgwProcess;
  let partner: TestPartner;

  before(async () => {
    h = await GatewayHarness.create();
    partner = await h.addPartner('acme');
    gw = await h.start('gateway');
  });
  after(async () => {
    await h?.cleanup();
  });

  it('mkdir, symlink, deleting the gateway key, writing to /outbox: upload.permission_denied, logged and counted per request', async () => {
    const r = await h.sftp(partner, [
      '-mkdir /inbox/folder',
      '-symlink /keys/gateway.asc /inbox/link.json.pgp',
      '-rm /keys/gateway.asc',
      '-put /etc/hostname /outbox/x.json.pgp',
      'ls /inbox',
    ]);
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stderr).to.match(/Permission denied/);

    const refused = () => gw.lines.map(tryJson).filter((l) => l?.message === 'sftp request refused');
    await waitFor(() => refused().length >= 4, 10_000, 'four refusals in the log');
    expect(refused().map((l) => [l!.op, l!.code, l!.partner])).to.deep.equal([
      ['mkdir', 'upload.permission_denied', 'acme'],
      ['symlink', 'upload.permission_denied', 'acme'],
      ['remove', 'upload.permission_denied', 'acme'],
      ['open', 'upload.permission_denied', 'acme'],
    ]);
    expect(refused().every((l) => l!.level === 'info'), 'logged at the default level').to.equal(true);

    const metrics = await consoleGet(gw.consolePort!, '/metrics');
    expect(metrics.status).to.equal(200);
    expect(countFor(metrics.body, 'pgw_sftp_refusals_total', 'upload.permission_denied')).to.equal(4);
  });

  it('a file name the gateway does not accept: upload.name_invalid, logged and counted', async () => {
    const before = gw.lines.length;
    const r = await h.sftp(partner, ['-put /etc/hostname /inbox/bad name.txt', 'ls /inbox']);
    expect(r.code, r.stderr).to.equal(0);
    const refused = () => gw.lines.slice(before).map(tryJson).filter((l) => l?.message === 'sftp request refused');
    await waitFor(() => refused().length >= 1, 10_000, 'the refusal in the log');
    expect(refused().map((l) => [l!.op, l!.code])).to.deep.equal([['open', 'upload.name_invalid']]);
    const metrics = await consoleGet(gw.consolePort!, '/metrics');
    expect(countFor(metrics.body, 'pgw_sftp_refusals_total', 'upload.name_invalid')).to.equal(1);
  });
});
