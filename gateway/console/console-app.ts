/**
 * The support console: an Express app on its own TLS listener (never the partner one).
 * Order: request context → security headers → /healthz, /readyz, /metrics (no login:
 * they hold no personal data and are meant for probes and scrapers) → login/logout →
 * session check for everything else (deny by default) → CSRF check on every POST →
 * pages; engineer-only actions and bull-board behind a role check. `POST /login` is
 * throttled per client address before any password is checked (each check is a scrypt
 * run on the thread pool uploads share).
 */
import express, { type Request, type Response, type NextFunction } from 'express';
import helmet from 'helmet';
import { rateLimit, type Store } from 'express-rate-limit';
import { randomBytes } from 'node:crypto';
import type { Config } from '../core/config.js';
import type { Ledger } from '../core/ledger/index.js';
import type { DataDir } from '../core/data-dir.js';
import type { Enqueuer } from '../core/pipeline.js';
import type { Logger } from '../core/logger.js';
import { serializeError } from '../core/logger.js';
import { ERROR_CODES, PgwError, isPgwError, type ErrorCode } from '../core/errors.js';
import { quantile } from '../core/ledger/stats.js';
import { requestContext, locals } from '../http/request-context.js';
import { completeTotpLogin, csrfMatches, identify, login, totpChallenge, type ConsoleIdentity, type LoginResult } from '../admin/operators.js';
import { reprocessBatch, resendAck } from '../admin/batch-admin.js';
import { setPartnerStatus } from '../admin/partner-admin.js';
import { isLate, parseSchedule } from '../admin/schedule.js';
import { isBatchId } from '../core/file-names.js';
import { partnerKeyState } from '../../keys/partner-keys.js';
import type { GatewayMetrics, QueueStats } from './metrics.js';
import { readiness, type ReadinessDeps } from './health.js';
import { batchPage, batchesPage, errorPage, loginPage, overviewPage, partnerPage, partnersPage, totpPage, type OverviewData } from './pages.js';
import { subjectRequestsPage } from './subject-requests-page.js';
import { PAGE_SIZE, pageHref, pageNumber, slicePage, zonedMidnight } from './html.js';
import { dailySeries } from './chart.js';
import { auditPage, handoffsPage } from './log-pages.js';
import { SubjectRequestRepo } from '../core/ledger/subject-requests.js';

export interface ConsoleDeps extends ReadinessDeps {
  config: Pick<Config, 'env' | 'console'> & { handoff: Pick<Config['handoff'], 'overdueHours'> };
  ledger: Ledger;
  dataDir: DataDir;
  enqueuer: Enqueuer;
  queues: QueueStats;
  metrics: GatewayMetrics;
  /** bull-board router (engineers only); null where Redis queues are not wired (tests). */
  queueBoard: express.Router | null;
  log: Logger;
  /** Where login attempts per address are counted (`pgw start`: Redis, shared by every gateway); none = this process. */
  loginRateStore?: Store;
  /** Opens operators' TOTP secrets: `dataKeys.derivedKey(TOTP_KEY_PURPOSE)` (admin/operator-totp.ts). */
  totpKey: Buffer;
}

const COOKIE = 'pgw_console';
const LOGIN_COOKIE = 'pgw_login_csrf';
/** Between the password and the code: names the challenge (admin/operators.ts), sent to /login only. */
const TOTP_COOKIE = 'pgw_login_totp';

function cookie(req: Request, name: string): string | undefined {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const i = part.indexOf('=');
    if (i > 0 && part.slice(0, i).trim() === name) return part.slice(i + 1).trim();
  }
  return undefined;
}

const cookieOpts = { httpOnly: true, secure: true, sameSite: 'strict', path: '/' } as const;
const who = (res: Response): ConsoleIdentity => res.locals.identity as ConsoleIdentity;
const page = (res: Response, status: number, body: string) => res.status(status).type('html').send(body);

export function createConsoleApp(d: ConsoleDeps): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', false);
  app.set('case sensitive routing', true);
  app.use(requestContext(d.log));
  app.use((req, res, next) => {
    res.on('finish', () => d.metrics.httpRequest(`console ${req.route?.path ?? 'unmatched'}`, res.statusCode));
    next();
  });
  // bull-board's UI needs its own inline script; our pages need none.
  app.use((req, res, next) => (req.path.startsWith('/queues') ? helmet({ contentSecurityPolicy: false })(req, res, next)
    : helmet({ contentSecurityPolicy: { directives: { 'script-src': ["'none'"], 'form-action': ["'self'"] } } })(req, res, next)));

  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok', pid: process.pid, uptimeSeconds: Math.round(process.uptime()) });
  });
  app.get('/readyz', async (_req, res) => {
    const r = await readiness(d);
    res.status(r.ready ? 200 : 503).json(r);
  });
  app.get('/metrics', async (_req, res) => {
    res.type(d.metrics.registry.contentType).send(await d.metrics.registry.metrics());
  });

  const form = express.urlencoded({ extended: false, limit: '8kb', parameterLimit: 20 });

  // Browsers ask for it on their own; without this it would be a redirect to /login.
  app.get('/favicon.ico', (_req, res) => {
    res.status(204).end();
  });
  app.get('/login', (req, res) => {
    // Keep a token the browser already holds: a second tab (or any stray GET) must not
    // invalidate the form shown in the first.
    const held = cookie(req, LOGIN_COOKIE);
    const csrf = held && /^[A-Za-z0-9_-]{24}$/.test(held) ? held : randomBytes(18).toString('base64url');
    res.cookie(LOGIN_COOKIE, csrf, { ...cookieOpts, maxAge: 15 * 60_000 });
    page(res, 200, loginPage(csrf, null));
  });
  // Before the CSRF check and scrypt: a refused attempt costs the gateway almost nothing.
  const loginLimit = rateLimit({
    windowMs: 60_000,
    limit: d.config.console.loginAttemptsPerMinute,
    standardHeaders: 'draft-8',
    legacyHeaders: false,
    handler: (_req, _res, next) => next(new PgwError('http.rate_limited')),
    ...(d.loginRateStore ? { store: d.loginRateStore } : {}),
  });
  app.post('/login', loginLimit, form, async (req, res) => {
    const expected = cookie(req, LOGIN_COOKIE);
    const body = req.body as Record<string, unknown>;
    if (!expected || !csrfMatches(expected, body._csrf)) throw new PgwError('console.csrf');
    const fresh = expected;
    try {
      const r = await login(d.ledger, d.config.console, String(body.name ?? ''), String(body.password ?? ''), new Date(), d.config.env);
      res.clearCookie(LOGIN_COOKIE, cookieOpts);
      if ('challengeId' in r) {
        res.cookie(TOTP_COOKIE, r.challengeId, { ...cookieOpts, path: '/login', expires: r.expiresAt });
        locals(res).log.info('console password accepted; code asked', { operator: r.operator });
        return res.redirect(303, '/login/totp');
      }
      startSession(res, r);
    } catch (err) {
      if (!isPgwError(err) || !['console.login_failed', 'console.locked', 'console.totp_required'].includes(err.code)) throw err;
      locals(res).log.info('console login refused', { code: err.code });
      page(res, err.code === 'console.locked' ? 429 : err.code === 'console.totp_required' ? 403 : 401, loginPage(fresh, err.message));
    }
  });
  const startSession = (res: Response, r: LoginResult) => {
    res.cookie(COOKIE, r.sessionId, { ...cookieOpts, expires: r.expiresAt });
    locals(res).log.info('console login', { operator: r.operator, role: r.role });
    res.redirect(303, '/');
  };
  app.get('/login/totp', async (req, res) => {
    const ch = await totpChallenge(d.ledger, cookie(req, TOTP_COOKIE));
    if (!ch) return res.redirect(303, '/login');
    page(res, 200, totpPage(ch.csrf, null));
  });
  // Throttled per address like the password (the same counter): codes are few, guesses must be too.
  app.post('/login/totp', loginLimit, form, async (req, res) => {
    const id = cookie(req, TOTP_COOKIE);
    const ch = await totpChallenge(d.ledger, id);
    if (!ch) return res.redirect(303, '/login');
    const body = req.body as Record<string, unknown>;
    if (!csrfMatches(ch.csrf, body._csrf)) throw new PgwError('console.csrf');
    try {
      const r = await completeTotpLogin(d.ledger, d.config.console, d.totpKey, id, String(body.code ?? ''));
      res.clearCookie(TOTP_COOKIE, { ...cookieOpts, path: '/login' });
      startSession(res, r);
    } catch (err) {
      if (!isPgwError(err)) throw err;
      locals(res).log.info('console code refused', { operator: ch.operator, code: err.code });
      if (err.code === 'console.login_required') return res.redirect(303, '/login');
      if (err.code !== 'console.totp_failed' && err.code !== 'console.totp_replayed' && err.code !== 'console.locked') throw err;
      // Too many wrong codes for this challenge, or the name is locked: back to the password.
      const still = err.code === 'console.locked' ? undefined : await totpChallenge(d.ledger, id);
      if (!still) {
        res.clearCookie(TOTP_COOKIE, { ...cookieOpts, path: '/login' });
        const csrf = randomBytes(18).toString('base64url');
        res.cookie(LOGIN_COOKIE, csrf, { ...cookieOpts, maxAge: 15 * 60_000 });
        return page(res, err.code === 'console.locked' ? 429 : 401, loginPage(csrf, err.message));
      }
      page(res, 401, totpPage(still.csrf, { code: err.code, message: err.message }));
    }
  });

  // Everything below needs a session.
  app.use(async (req, res, next) => {
    const id = await identify(d.ledger, cookie(req, COOKIE));
    if (!id) {
      if (req.method === 'GET' || req.method === 'HEAD') return res.redirect(303, '/login');
      throw new PgwError('console.login_required');
    }
    res.locals.identity = id;
    locals(res).log = locals(res).log.child({ operator: id.operator });
    next();
  });
  app.use(form);
  app.use((req, res, next) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      const origin = requestOrigin(req);
      if (origin === 'cross') throw new PgwError('console.csrf');
      if (req.path.startsWith('/queues/api')) {
        // bull-board's own UI cannot send our token, and SameSite alone would let any page
        // of the same site (another port or service of this host) act: its calls must prove
        // they come from a console page.
        if (origin !== 'same') throw new PgwError('console.csrf');
      } else if (!csrfMatches(who(res).csrf, (req.body as Record<string, unknown> | undefined)?._csrf)) {
        throw new PgwError('console.csrf');
      }
    }
    next();
  });
  const engineer = (_req: Request, res: Response, next: NextFunction) => {
    if (who(res).role !== 'engineer') throw new PgwError('console.forbidden');
    next();
  };
  const actor = (res: Response) => `console:${who(res).operator}`;
  /** The signed-in operator as pages see them: with the zone every time is shown in. */
  const view = (res: Response) => ({ ...who(res), timeZone: d.config.console.timezone });

  app.post('/logout', async (_req, res) => {
    await d.ledger.operators.deleteSession(who(res).idHash);
    res.clearCookie(COOKIE, cookieOpts);
    res.redirect(303, '/login');
  });

  app.get('/', async (_req, res) => page(res, 200, overviewPage(view(res), await overview(d))));
  app.get('/subject-requests', async (req, res) => {
    const open = await new SubjectRequestRepo(d.ledger.handle).list({ open: true });
    page(res, 200, subjectRequestsPage(view(res), open, new Date(), listPages(open, pageNumber(req.query.page), '/subject-requests')));
  });

  app.get('/batches', async (req, res) => {
    const q = req.query as Record<string, string | undefined>;
    const str = (k: string) => (typeof q[k] === 'string' ? q[k]!.slice(0, 100) : '');
    const f = { q: str('q').trim(), partner: str('partner'), status: str('status'), code: str('code'), since: str('since'), until: str('until') };
    // From the start of `since` to the end of `until`, both days of PGW_TIMEZONE.
    const date = (s: string, plusDay = false) => {
      const start = zonedMidnight(s, d.config.console.timezone);
      if (!start || !plusDay) return start;
      const next = new Date(Date.parse(`${s}T00:00:00Z`) + 86_400_000).toISOString().slice(0, 10); // calendar arithmetic: the next day, whatever its length
      return zonedMidnight(next, d.config.console.timezone);
    };
    // Page keys: `<received_at>_<batch id>` of the last row shown (older) or the first (newer).
    const cursor = (k: string) => {
      const m = /^(\d{4}-\d\d-\d\dT[\d:.]+Z)_(b-\d{8}-[a-z0-9]{12})$/.exec(str(k));
      return m ? { receivedAt: m[1]!, id: m[2]! } : undefined;
    };
    const after = cursor('after');
    const before = after ? undefined : cursor('before');
    const limit = PAGE_SIZE;
    const rows = await d.ledger.batches.list({
      ...(f.q ? { search: f.q } : {}),
      ...(f.partner ? { partnerId: f.partner } : {}),
      ...(['accepted', 'partially_accepted', 'rejected', 'pending'].includes(f.status) ? { outcome: f.status as 'pending' } : {}),
      ...(f.code ? { errorCode: f.code } : {}),
      ...(date(f.since) ? { since: date(f.since)! } : {}),
      ...(date(f.until, true) ? { until: date(f.until, true)! } : {}),
      ...(after ? { after } : {}),
      ...(before ? { before } : {}),
      limit: limit + 1,
    });
    // One row more than a page says whether there is another page that way (newest first;
    // going back to newer rows the extra row is the newest).
    const more = rows.length > limit;
    const shown = before ? rows.slice(more ? 1 : 0) : rows.slice(0, limit);
    const withAcks = await Promise.all(shown.map(async (b) => ({ ...b, ack: b.ack_version ? await d.ledger.batches.getAck(b.id) : undefined })));
    const key = (b: { received_at: string; id: string } | undefined) => (b ? `${b.received_at}_${b.id}` : null);
    const pages = {
      newer: (before && more) || after ? key(shown[0]) : null,
      older: (!before && more) || before ? key(shown[shown.length - 1]) : null,
    };
    page(res, 200, batchesPage(view(res), withAcks, f, (await d.ledger.partners.list()).map((p) => p.id), pages));
  });

  app.get('/handoffs', async (req, res) => {
    // Page key: `<ready_at>_<batch id>` of the last row shown; the list runs oldest first.
    const m = /^(\d{4}-\d\d-\d\dT[\d:.]+Z)_(b-\d{8}-[a-z0-9]{12})$/.exec(typeof req.query.after === 'string' ? req.query.after : '');
    const rows = await d.ledger.handoffs.list({ ...(m ? { after: { readyAt: m[1]!, batchId: m[2]! } } : {}), limit: PAGE_SIZE + 1 });
    const shown = rows.slice(0, PAGE_SIZE);
    const last = shown[shown.length - 1];
    const overdueBefore = new Date(Date.now() - d.config.handoff.overdueHours * 3600_000).toISOString();
    page(res, 200, handoffsPage(view(res), shown, overdueBefore, {
      prev: m ? '/handoffs' : null,
      next: rows.length > PAGE_SIZE && last ? pageHref('/handoffs', {}, 'after', `${last.ready_at}_${last.batch_id}`) : null,
    }));
  });
  app.get('/audit', async (req, res) => {
    // Page key: the newest sequence number shown. Sequence numbers are never reused and a
    // gap means the chain was cut (pgw audit verify), so the newer page starts PAGE_SIZE above.
    const upTo = typeof req.query.upto === 'string' && /^[1-9]\d{0,15}$/.test(req.query.upto) ? Number(req.query.upto) : undefined;
    const rows = await d.ledger.audit.list({ limit: PAGE_SIZE + 1, ...(upTo ? { upToSeq: upTo } : {}) });
    const shown = rows.slice(0, PAGE_SIZE);
    const first = shown[0];
    const last = shown[shown.length - 1];
    const newest = upTo ? (await d.ledger.audit.list({ limit: 1 }))[0]?.seq ?? 0 : 0;
    page(res, 200, auditPage(view(res), shown, {
      newer: first && newest > first.seq ? pageHref('/audit', {}, 'upto', first.seq + PAGE_SIZE) : null,
      older: rows.length > PAGE_SIZE && last ? pageHref('/audit', {}, 'upto', last.seq - 1) : null,
    }));
  });

  const batchDetail = async (id: string) => {
    const batch = isBatchId(id) ? await d.ledger.batches.get(id) : undefined;
    if (!batch) throw new PgwError('batch.not_found');
    const acks = await d.ledger.batches.acks(id);
    return {
      batch, events: await d.ledger.batches.events(id), acks, pushes: await d.ledger.ackPushes.forBatch(id),
      handoff: await d.ledger.handoffs.get(id), results: await d.ledger.handoffs.results(id),
    };
  };
  app.get('/batches/:id', async (req, res) => page(res, 200, batchPage(view(res), await batchDetail(String(req.params.id)), null, pageNumber(req.query.issues))));
  app.post('/batches/:id/reprocess', engineer, async (req, res) => {
    const id = String(req.params.id);
    await batchDetail(id);
    const { from } = await reprocessBatch(d.ledger, d.dataDir, d.enqueuer, id, actor(res));
    page(res, 200, batchPage(view(res), await batchDetail(id), `Reprocessing from ${from}; the new ack will supersede the previous one.`));
  });
  app.post('/batches/:id/resend', engineer, async (req, res) => {
    const id = String(req.params.id);
    await resendAck(d.ledger, d.dataDir, d.enqueuer, id, actor(res));
    page(res, 200, batchPage(view(res), await batchDetail(id), 'The ack is offered again (outbox and webhook).'));
  });

  app.get('/partners', async (req, res) => {
    const now = new Date();
    const last = await d.ledger.stats.lastReceived();
    const pending = await d.ledger.stats.pendingAcks(now);
    const keys = await d.ledger.pgpKeys.partnerKeys();
    const pg = listPages(await d.ledger.partners.list(), pageNumber(req.query.page), '/partners');
    const rows = pg.rows.map((p) => ({
      partner: p,
      activeKeys: keys.filter((k) => k.partner_id === p.id && partnerKeyState(k, now) === 'active').length,
      pendingAcks: pending.byPartner.find((x) => x.partner_id === p.id)?.pending ?? 0,
      last: last.get(p.id) ?? null,
      late: lateNow(p.expected_schedule, last.get(p.id) ?? null, d.config.console.timezone, now),
    }));
    page(res, 200, partnersPage(view(res), rows, pg));
  });
  app.get('/partners/:id', async (req, res) => {
    const p = await d.ledger.partners.get(String(req.params.id));
    if (!p) throw new PgwError('partner.not_found');
    const pgpKeys = (await d.ledger.pgpKeys.partnerKeys(p.id)).map((k) => {
      const { public_armored: _a, private_armored: _b, ...rest } = k;
      return { ...rest, state: partnerKeyState(k) };
    });
    const tokens = (await d.ledger.apiTokens.list(p.id)).map(({ secret_hash: _h, ...t }) => t);
    const pushes = await d.ledger.ackPushes.recentForPartner(p.id);
    const overdueHours = d.config.console.overdueAckHours;
    const overdueBefore = new Date(Date.now() - overdueHours * 3600_000).toISOString();
    const counts = (await d.ledger.documents.waitingByPartner(overdueBefore)).find((x) => x.partner_id === p.id);
    const n = pageNumber(req.query.docs);
    const docs = await d.ledger.documents.list({ partnerId: p.id, limit: PAGE_SIZE + 1, offset: (n - 1) * PAGE_SIZE });
    const here = `/partners/${encodeURIComponent(p.id)}`;
    const documents = {
      rows: docs.slice(0, PAGE_SIZE), waiting: counts?.waiting ?? 0, overdue: counts?.overdue ?? 0, overdueBefore, overdueHours,
      newer: n > 1 ? `${pageHref(here, {}, 'docs', n - 1)}#documents` : null,
      older: docs.length > PAGE_SIZE ? `${pageHref(here, {}, 'docs', n + 1)}#documents` : null,
    };
    page(res, 200, partnerPage(view(res), { partner: p, pgpKeys, sshKeys: await d.ledger.partners.sshKeys(p.id), tokens, pushes, documents }));
  });
  for (const [action, status] of [['disable', 'disabled'], ['enable', 'active']] as const) {
    app.post(`/partners/:id/${action}`, engineer, async (req, res) => {
      await setPartnerStatus(d.ledger, String(req.params.id), status, actor(res));
      res.redirect(303, `/partners/${encodeURIComponent(String(req.params.id))}`);
    });
  }
  if (d.queueBoard) app.use('/queues', engineer, d.queueBoard);

  app.use(() => {
    throw new PgwError('http.not_found');
  });
  app.use((err: unknown, _req: Request, res: Response, _next: NextFunction) => {
    const pgw = isPgwError(err) ? err : null;
    if (!pgw) locals(res).log.error('console request failed', { err: serializeError(err) });
    const code: ErrorCode = pgw?.code ?? 'internal.error';
    const status = code === 'console.forbidden' || code === 'console.csrf' ? 403 : code === 'console.login_required' ? 401
      : code === 'http.rate_limited' ? 429 : code.endsWith('not_found') ? 404 : code === 'batch.not_reprocessable' ? 409 : pgw ? 400 : 500;
    if (res.headersSent) return void res.destroy();
    const identity = res.locals.identity as ConsoleIdentity | undefined;
    page(res, status, errorPage(identity ? { ...identity, timeZone: d.config.console.timezone } : null, status, code, pgw?.message ?? ERROR_CODES['internal.error'].message));
  });
  return app;
}

/**
 * Where a request says it comes from, as the browser states it: `Sec-Fetch-Site` (which a
 * page cannot set), else `Origin` against the host asked for. 'unknown' when neither is
 * sent (not a browser, or a very old one).
 */
function requestOrigin(req: Request): 'same' | 'cross' | 'unknown' {
  const site = req.headers['sec-fetch-site'];
  if (typeof site === 'string') return site === 'same-origin' ? 'same' : 'cross';
  const origin = req.headers.origin;
  if (typeof origin === 'string') return origin === `https://${req.headers.host ?? ''}` ? 'same' : 'cross';
  return 'unknown';
}

/** One page of an in-memory list (`?page=`) and its previous/next links. */
function listPages<T>(rows: T[], n: number, path: string): { rows: T[]; prev: string | null; next: string | null } {
  const p = slicePage(rows, n);
  return { rows: p.rows, prev: p.hasPrev ? pageHref(path, {}, 'page', n - 1) : null, next: p.hasNext ? pageHref(path, {}, 'page', n + 1) : null };
}

function lateNow(schedule: string | null, last: string | null, tz: string, now: Date): boolean {
  if (!schedule) return false;
  try {
    return isLate(parseSchedule(schedule), now, tz, last ? new Date(last) : null);
  } catch {
    return false;
  }
}

/** The overview's facts: the same ledger queries /metrics uses. */
async function overview(d: ConsoleDeps): Promise<OverviewData> {
  const now = new Date();
  const midnight = new Date(now);
  midnight.setUTCHours(0, 0, 0, 0);
  const weekAgo = new Date(now.getTime() - 7 * 86_400_000);
  const sum = (rows: { status: string; n: number }[]) => rows.reduce<Record<string, number>>((m, r) => ({ ...m, [r.status]: (m[r.status] ?? 0) + r.n }), {});
  const week = await d.ledger.stats.batchCounts(weekAgo);
  const byCode = new Map<string, number>();
  for (const r of week) if (r.status === 'rejected' || r.status === 'partially_accepted') if (r.code) byCode.set(r.code, (byCode.get(r.code) ?? 0) + r.n);
  const lags = (await d.ledger.stats.stageDurations(weekAgo)).total;
  const last = await d.ledger.stats.lastReceived();
  const late = (await d.ledger.partners.list())
    .filter((p) => p.status === 'active' && lateNow(p.expected_schedule, last.get(p.id) ?? null, d.config.console.timezone, now))
    .map((p) => ({ partner: p.id, schedule: p.expected_schedule!, last: last.get(p.id) ?? null }));
  let queues: OverviewData['queues'] = null;
  try {
    queues = await d.queues.jobCounts();
  } catch {
    queues = null; // Redis down: the page says so
  }
  return {
    today: sum(await d.ledger.stats.batchCounts(midnight)),
    week: sum(week),
    rejectionsByCode: [...byCode.entries()].sort((a, b) => b[1] - a[1]),
    lag: { p50: quantile(lags, 0.5), p95: quantile(lags, 0.95), n: lags.length },
    queues,
    acks: await d.ledger.stats.pendingAcks(new Date(now.getTime() - d.config.console.overdueAckHours * 3600_000)),
    overdueHours: d.config.console.overdueAckHours,
    handoffs: { ...(await d.ledger.handoffs.waiting(new Date(now.getTime() - d.config.handoff.overdueHours * 3600_000))), overdueHours: d.config.handoff.overdueHours },
    late,
    expiring: await d.ledger.stats.expiringKeys(new Date(now.getTime() + 30 * 86_400_000)),
    // 31 days back: the oldest of the 30 local days can start up to a day before 30 × 24 h ago.
    days: dailySeries(await d.ledger.stats.batchesPerHour(new Date(now.getTime() - 31 * 86_400_000)),
      await d.ledger.stats.ackTimes(new Date(now.getTime() - 31 * 86_400_000)), now, d.config.console.timezone),
  };
}
