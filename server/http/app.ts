// The Express app. Middleware order reads top to bottom like the checks a request meets:
// headers → probes (/healthz, /readyz: no session) → (API: no-store → CSRF → JSON body → session → lifetime → routes → JSON errors)
// → the client (static build, or Vite in dev).
import path from 'node:path';
import express, { type ErrorRequestHandler, type RequestHandler } from 'express';
import type { Config } from '../config.ts';
import type { AuditLog } from '../security/audit-log.ts';
import type { AddressOf } from '../security/client-address.ts';
import { hostHeaderCount } from '../security/host.ts';
import type { DeviceCookies } from '../security/device-cookie.ts';
import type { Pseudonym } from '../security/log-pseudonym.ts';
import type { LoginGuard } from '../security/login-throttle.ts';
import type { OriginVerdict } from '../security/origin.ts';
import type { HashLimiter } from '../security/passwords.ts';
import type { RegistrationLimit } from '../security/registration-limit.ts';
import type { Revocations } from '../cluster/revocations.ts';
import type { ParleyStore } from '../store/store.ts';
import { authRoutes } from './auth-routes.ts';
import { csrfGuard } from './csrf.ts';
import { apiErrorHandler, apiNotFound, sendError } from './errors.ts';
import { jsonBody } from './json-body.ts';
import { noStore, securityHeaders } from './headers.ts';
import { healthRoutes, type HealthDeps } from './health.ts';
import { enforceSessionLifetime, type SessionParser } from './session.ts';

export type AppDeps = {
  config: Config;
  store: ParleyStore;
  sessionParser: SessionParser;
  checkOrigin: (origin: string | undefined) => OriginVerdict;
  throttle: LoginGuard;
  hashing: { login: HashLimiter; register: HashLimiter };
  revocations: Revocations;
  log: AuditLog;
  addressOf: AddressOf;
  deviceCookies: DeviceCookies;
  registrations: RegistrationLimit;
  pseudonym: Pseudonym;
  /** Serves the browser client: express.static over dist/client, or Vite's dev middleware. */
  client: RequestHandler;
  /** What GET /readyz waits for, and whether a shutdown has begun. */
  health: HealthDeps;
};

export const CLIENT_DIST = path.resolve(import.meta.dirname, '../../dist/client');

export function createApp(deps: AppDeps): express.Express {
  const { config, log } = deps;
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', config.trustProxy);
  app.use(securityHeaders(config));
  // RFC 9112 §3.2: a request with two Host headers is invalid (Node would keep the first).
  app.use((req, res, next) => (hostHeaderCount(req) === 1 ? next() : sendError(res, 400, 'bad_request', 'Send exactly one Host header.')));
  // Before the session: a probe never reads or sets a session, and is never logged.
  app.use(healthRoutes(deps.health));

  const api = express.Router();
  api.use(noStore);
  if (!config.disabled.has('csrf')) api.use(csrfGuard(deps.checkOrigin, log, deps.addressOf));
  api.use(jsonBody(config.http.maxBodyBytes));
  api.use(deps.sessionParser);
  api.use(
    enforceSessionLifetime(config.session, deps.store.sessions, (sid, user) => {
      log('session_expired', { user });
      deps.revocations.publish({ kind: 'session', sid, reason: 'expired' });
    }),
  );
  api.use(authRoutes(deps));
  api.use(apiNotFound);
  api.use(apiErrorHandler(log));
  app.use('/api', api);

  app.use(deps.client);
  // Our own last handlers: Express's default 404/error page would replace helmet's CSP
  // with its own, and a page without frame-ancestors or Trusted Types is a gap.
  app.use((_req, res) => {
    res.status(404).type('text/plain').send('Not found');
  });
  app.use(((error, req, res, _next) => {
    if (res.headersSent) return;
    const status = (error as { status?: number }).status;
    if (typeof status === 'number' && status >= 400 && status < 500) return void res.status(status).type('text/plain').send('Bad request');
    log('server_error', { path: req.path.slice(0, 64), detail: error instanceof Error ? `${error.name}: ${error.message}` : 'unknown' });
    res.status(500).type('text/plain').send('Server error');
  }) as ErrorRequestHandler);
  return app;
}

export function staticClient(): RequestHandler {
  return express.static(CLIENT_DIST, {
    index: 'index.html',
    dotfiles: 'ignore',
    // Vite fingerprints asset names, so they may be cached for long; index.html may not.
    setHeaders: (res, file) => {
      res.setHeader('Cache-Control', file.includes(`${path.sep}assets${path.sep}`) ? 'public, max-age=31536000, immutable' : 'no-cache');
    },
  });
}
