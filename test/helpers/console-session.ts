/**
 * A logged-in console session over HTTPS, as a browser would hold it: the login form with its
 * CSRF cookie and token, then the session cookie on every GET.
 */
import https from 'node:https';

interface Res { status: number; body: string; headers: Record<string, string | string[] | undefined> }

function req(port: number, method: string, path: string, opts: { cookie?: string; form?: Record<string, string> } = {}): Promise<Res> {
  return new Promise((resolve, reject) => {
    const body = opts.form ? new URLSearchParams(opts.form).toString() : undefined;
    const r = https.request({
      host: '127.0.0.1', port, method, path, rejectUnauthorized: false,
      headers: { ...(opts.cookie ? { cookie: opts.cookie } : {}), ...(body ? { 'content-type': 'application/x-www-form-urlencoded' } : {}) },
    }, (res) => {
      let b = '';
      res.on('data', (d: Buffer) => { b += d.toString(); });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: b, headers: res.headers }));
    });
    r.on('error', reject);
    r.end(body);
  });
}

const cookieOf = (r: Res, name: string) => (r.headers['set-cookie'] as string[] | undefined)?.find((c) => c.startsWith(`${name}=`))?.split(';')[0];

/** Log in as `name`; returns a GET that carries the session. */
export async function consoleSession(port: number, name: string, password: string): Promise<(path: string) => Promise<Res>> {
  const page = await req(port, 'GET', '/login');
  const token = /name="_csrf" value="([^"]+)"/.exec(page.body)![1]!;
  const r = await req(port, 'POST', '/login', { cookie: cookieOf(page, 'pgw_login_csrf')!, form: { _csrf: token, name, password } });
  const session = cookieOf(r, 'pgw_console');
  if (!session) throw new Error(`console login failed: ${r.status}`);
  return (path) => req(port, 'GET', path, { cookie: session });
}
