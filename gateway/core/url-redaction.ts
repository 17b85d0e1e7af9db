/**
 * Connection URLs as they may be logged. A credential can sit in a URL in several places:
 * `user:password@`, a bare `secret@` (some Redis clients read it as the password), query
 * parameters (`?password=`, `?sslpassword=` for libpq, anything a driver adds later) and an
 * unencoded `@` or `/` inside a password. So the rule is an allow-list, not a deny-list:
 * the user name before a `:` stays, and the values of query parameters known to hold no
 * secret stay; every other credential-bearing part becomes `***`.
 */

/** Query parameters whose values are settings, never secrets (libpq, node-postgres, Redis clients). */
const PLAIN_PARAMS = new Set([
  'sslmode', 'sslrootcert', 'sslcert', 'sslkey', 'sslcrl', 'sslnegotiation', 'ssl', 'application_name', 'connect_timeout',
  'target_session_attrs', 'host', 'hostaddr', 'port', 'dbname', 'user', 'options', 'keepalives', 'family', 'db',
]);

/** `url` with every credential masked; host, port, path and plain settings stay readable. */
export function redactUrlCredentials(url: string): string {
  const scheme = /^[A-Za-z][A-Za-z0-9+.-]*:(?:\/\/)?/.exec(url)?.[0] ?? '';
  let rest = url.slice(scheme.length);
  let userinfo = '';
  // The last `@`: a password with an unencoded `@` (or `/`, `?`) is masked whole, never half.
  const at = scheme.endsWith('//') ? rest.lastIndexOf('@') : -1;
  if (at >= 0) {
    const colon = rest.indexOf(':');
    userinfo = colon >= 0 && colon < at ? `${rest.slice(0, colon)}:***@` : '***@';
    rest = rest.slice(at + 1);
  }
  const hash = rest.indexOf('#');
  const fragment = hash >= 0 ? '#***' : '';
  if (hash >= 0) rest = rest.slice(0, hash);
  const q = rest.indexOf('?');
  if (q >= 0) rest = `${rest.slice(0, q)}?${rest.slice(q + 1).split('&').map(maskParam).join('&')}`;
  return `${scheme}${userinfo}${rest}${fragment}`;
}

function maskParam(pair: string): string {
  const eq = pair.indexOf('=');
  if (eq < 0) return pair;
  let name: string;
  try {
    name = decodeURIComponent(pair.slice(0, eq)).toLowerCase();
  } catch {
    name = '';
  }
  return PLAIN_PARAMS.has(name) ? pair : `${pair.slice(0, eq)}=***`;
}
