/**
 * Test side of the partner API: an in-process HTTPS client that records every response (so
 * a suite can check each one against the OpenAPI document at the end), a `curl` runner (the
 * client partners really use), and a webhook receiver on loopback with its own certificate.
 */
import https from 'node:https';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { Ajv2020 } from 'ajv/dist/2020.js';
import type { ValidateFunction } from 'ajv';
import type { AddressInfo } from 'node:net';
import { OPENAPI_DOCUMENT } from '../../gateway/http/openapi.js';
import { createDevCertificate } from '../../keys/dev-tls-cert.js';

/** GET from the support console (its dev certificate is not checked): /readyz, /metrics. */
export function consoleGet(port: number, p: string): Promise<{ status: number; body: string; type: string }> {
  return new Promise((resolve, reject) => {
    https.get({ host: '127.0.0.1', port, path: p, rejectUnauthorized: false }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => { body += d.toString(); });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, type: String(res.headers['content-type'] ?? '') }));
    }).on('error', reject);
  });
}

export interface ApiResponse {
  method: string;
  path: string;
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
  /** Parsed when the answer is JSON. */
  json: any;
}

export interface RequestOptions {
  token?: string;
  body?: Buffer | string;
  headers?: Record<string, string>;
  /** Source address, e.g. 127.0.0.2, to act as another client. */
  localAddress?: string;
  /** Client certificate for mutual TLS. */
  cert?: { cert: string; key: string; passphrase: string };
}

export class ApiClient {
  readonly seen: ApiResponse[] = [];
  private readonly agent: https.Agent;

  constructor(readonly port: number, private readonly ca: string) {
    // An idle socket is dropped after 2 s, before the server's 5 s keep-alive timeout: Node's
    // agent otherwise keeps it exactly as long as the server's hint, and a request sent on it
    // as the server closes it fails with "socket hang up" (seen once under load).
    this.agent = new https.Agent({ keepAlive: true, ca, maxSockets: 32, timeout: 2000 });
  }

  request(method: string, path: string, opts: RequestOptions = {}): Promise<ApiResponse> {
    return new Promise((resolve, reject) => {
      const headers: Record<string, string> = { ...opts.headers };
      if (opts.token) headers.authorization = `Bearer ${opts.token}`;
      const useOwnAgent = Boolean(opts.localAddress || opts.cert);
      const req = https.request({
        host: '127.0.0.1', port: this.port, method, path, headers,
        ...(useOwnAgent ? { agent: false, ca: this.ca, localAddress: opts.localAddress, ...(opts.cert ?? {}) } : { agent: this.agent }),
      }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (d: Buffer) => chunks.push(d));
        res.on('error', reject);
        res.on('end', () => {
          const body = Buffer.concat(chunks);
          const isJson = /json/.test(String(res.headers['content-type'] ?? ''));
          const r: ApiResponse = { method, path, status: res.statusCode ?? 0, headers: res.headers, body, json: isJson && body.length ? JSON.parse(body.toString('utf8')) : undefined };
          this.seen.push(r);
          resolve(r);
        });
      });
      req.on('error', reject);
      req.end(opts.body);
    });
  }

  close(): void {
    this.agent.destroy();
  }
}

export interface CurlResult {
  code: number;
  stdout: string;
  stderr: string;
  /** `%{http_code}` as printed by curl's -w. */
  httpCode: number;
}

/** Run curl with `--cacert` and a trailing `-w '\n%{http_code}'`; the body comes back in stdout. */
export function curl(ca: string, args: string[]): Promise<CurlResult> {
  return new Promise((resolve) => {
    execFile('curl', ['-sS', '--cacert', ca, '-w', '\n%{http_code}', ...args], { timeout: 60_000, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      const lines = stdout.split('\n');
      const httpCode = Number(lines.pop());
      resolve({ code: err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0, stdout: lines.join('\n'), stderr, httpCode });
    });
  });
}

/** Compiles the response schemas of an OpenAPI document (the partner API's unless given) once. */
export class OpenApiChecker {
  private readonly ajv = new Ajv2020({ strict: false, allErrors: true });
  private readonly cache = new Map<string, ValidateFunction>();

  constructor(private readonly doc: { components: object; paths: object } = OPENAPI_DOCUMENT) {
    this.ajv.addFormat('date-time', /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
    this.ajv.addSchema({ $id: 'pgw-openapi', components: doc.components } as object);
  }

  private validator(ref: string): ValidateFunction {
    let v = this.cache.get(ref);
    if (!v) {
      v = this.ajv.getSchema(`pgw-openapi${ref}`)!;
      if (!v) throw new Error(`no schema ${ref}`);
      this.cache.set(ref, v);
    }
    return v;
  }

  /** Problems of one response against the document; [] when it conforms. */
  check(r: ApiResponse): string[] {
    const pathname = r.path.split('?')[0]!;
    const paths = this.doc.paths as Record<string, Record<string, { responses: Record<string, { content?: Record<string, { schema: { $ref?: string } }> }> }>>;
    const method = r.method.toLowerCase();
    const template = Object.keys(paths).find((t) => paths[t]![method] && new RegExp(`^${t.replace(/\{[^}]+\}/g, '[^/]+')}$`).test(pathname));
    const op = template ? paths[template]![method] : undefined;
    const where = `${r.method} ${r.path} → ${r.status}`;
    const type = String(r.headers['content-type'] ?? '').split(';')[0]!.trim();
    if (!op) {
      // Unknown route or method: must still be the one error shape.
      if (r.status < 400) return [`${where}: not in the document`];
      return this.validate(where, '#/components/schemas/Error', r.json);
    }
    const resp = op.responses[String(r.status)] ?? op.responses.default;
    if (!resp) return [`${where}: status not documented`];
    if (r.method === 'HEAD') return [];
    const media = resp.content?.[type];
    if (!media) return [`${where}: content type ${type || '(none)'} not documented (${Object.keys(resp.content ?? {}).join(', ')})`];
    return media.schema.$ref ? this.validate(where, media.schema.$ref, r.json) : [];
  }

  private validate(where: string, ref: string, body: unknown): string[] {
    const v = this.validator(ref.replace(/^#/, '#'));
    return v(body) ? [] : [`${where}: ${this.ajv.errorsText(v.errors)}`];
  }
}

export interface ReceivedPush {
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
  status: number;
}

/** An HTTPS webhook receiver on 127.0.0.1:0 that answers `failFirst` pushes with 500, then 200. */
export class WebhookReceiver {
  readonly pushes: ReceivedPush[] = [];
  readonly certPem: string;
  private readonly server: https.Server;
  failFirst = 0;
  /** Answer with this status instead (e.g. 302 to test redirects). */
  fixedStatus: number | null = null;

  private constructor() {
    const pass = randomBytes(12).toString('hex');
    const cert = createDevCertificate(pass);
    this.certPem = cert.certPem;
    this.server = https.createServer({ cert: cert.certPem, key: cert.keyPem, passphrase: pass }, (req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (d: Buffer) => chunks.push(d));
      req.on('end', () => {
        const failed = this.pushes.filter((p) => p.status >= 300).length;
        const status = this.fixedStatus ?? (failed < this.failFirst ? 500 : 200);
        this.pushes.push({ headers: req.headers, body: Buffer.concat(chunks), status });
        if (status >= 300 && status < 400) res.setHeader('Location', 'https://127.0.0.1:1/elsewhere');
        res.writeHead(status).end();
      });
    });
  }

  static async start(): Promise<WebhookReceiver> {
    const r = new WebhookReceiver();
    await new Promise<void>((resolve) => r.server.listen(0, '127.0.0.1', resolve));
    return r;
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}
