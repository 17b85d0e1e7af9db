/**
 * The console over HTTPS, as a browser would speak to it: one request function, the login form
 * with its CSRF cookie and token, and a logged-in session carrying its cookie on every GET.
 */
import https from 'node:https';

export interface ConsoleRes { status: number; body: string; headers: Record<string, string | string[] | undefined> }
/** `from` binds the client to a loopback address (the login throttle counts per address). */
export interface ConsoleReqOpts { from?: string; cookie?: string; form?: Record<string, string>; headers?: Record<string, string> }

export function consoleRequest(port: number, method: string, path: string, o: ConsoleReqOpts = {}): Promise<ConsoleRes> {
  return new Promise((resolve, reject) => {
    const body = o.form ? new URLSearchParams(o.form).toString() : undefined;
    const r = https.request({
      host: '127.0.0.1', port, method, path, rejectUnauthorized: false,
      ...(o.from ? { localAddress: o.from, agent: false } : {}),
      headers: { ...(o.cookie ? { cookie: o.cookie } : {}), ...(body ? { 'content-type': 'application/x-www-form-urlencoded' } : {}), ...o.headers },
    }, (res) => {
      let b = '';
      res.on('data', (d: Buffer) => { b += d.toString(); });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: b, headers: res.headers }));
    });
    r.on('error', reject);
    r.end(body);
  });
}

export const cookieOf = (r: ConsoleRes, name: string) => (r.headers['set-cookie'] as string[] | undefined)?.find((c) => c.startsWith(`${name}=`))?.split(';')[0];

/** One login form submission (GET /login for the CSRF pair, then POST); the answer as it comes. */
export async function consoleLoginAttempt(port: number, name: string, password: string, from?: string): Promise<ConsoleRes> {
  const page = await consoleRequest(port, 'GET', '/login', { from });
  const csrfCookie = cookieOf(page, 'pgw_login_csrf')!;
  const token = /name="_csrf" value="([^"]+)"/.exec(page.body)![1]!;
  return consoleRequest(port, 'POST', '/login', { from, cookie: csrfCookie, form: { _csrf: token, name, password } });
}

/** Log in as `name`; returns a GET that carries the session. */
export async function consoleSession(port: number, name: string, password: string): Promise<(path: string) => Promise<ConsoleRes>> {
  const r = await consoleLoginAttempt(port, name, password);
  const session = cookieOf(r, 'pgw_console');
  if (!session) throw new Error(`console login failed: ${r.status}`);
  return (path) => consoleRequest(port, 'GET', path, { cookie: session });
}
