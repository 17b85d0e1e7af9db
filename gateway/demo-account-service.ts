/**
 * The demo's stand-in for Babybalance's account service: a client of the internal API over
 * the real internal listener, trusting only the gateway's dev certificate (as a service
 * would pin it), with a service token made by the same code as `pgw service add`.
 */
import https from 'node:https';

export interface InternalClient {
  request(method: 'GET' | 'POST', urlPath: string, body?: { type: string; bytes: Buffer }): Promise<{ status: number; json: unknown }>;
}

export function internalClient(port: number, caPem: string, token: string): InternalClient {
  return {
    request: (method, urlPath, body) => new Promise((resolve, reject) => {
      const req = https.request({
        host: '127.0.0.1', port, path: urlPath, method, ca: caPem, agent: false,
        headers: {
          Authorization: `Bearer ${token}`,
          ...(body ? { 'Content-Type': body.type, 'Content-Length': String(body.bytes.length) } : {}),
        },
      }, (res) => {
        const parts: Buffer[] = [];
        res.on('data', (c: Buffer) => parts.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const text = Buffer.concat(parts).toString('utf8');
          try {
            resolve({ status: res.statusCode ?? 0, json: JSON.parse(text) });
          } catch {
            reject(new Error(`${method} ${urlPath}: ${res.statusCode} with a body that is not JSON`));
          }
        });
      });
      req.on('error', reject);
      req.end(body?.bytes);
    }),
  };
}

/** The answer's JSON when the status is the expected one; otherwise the error code the gateway gave. */
export async function expectStatus<T>(p: Promise<{ status: number; json: unknown }>, status: number, what: string): Promise<T> {
  const r = await p;
  if (r.status !== status) {
    const code = (r.json as { error?: { code?: string } } | null)?.error?.code ?? 'no code';
    throw new Error(`${what}: HTTP ${r.status} (${code})`);
  }
  return r.json as T;
}
