// Probes for load balancers and orchestrators, outside /api: no session (so no Set-Cookie and
// no session-store read), no CSRF, nothing logged per probe — a probe every 2 s from each load
// balancer would otherwise drown the audit log. Security headers are set before this router,
// like on every response.
//
//   GET /healthz  the process is alive and serving HTTP: always 200 while it runs.
//   GET /readyz   this instance can serve users: the store (and whatever `checks` the
//                 composition root adds, e.g. Redis) answers. 503 while not, and from the
//                 moment a graceful shutdown starts, so the balancer stops sending new users.
//
// Cost: anyone can call /readyz, so a flood of probes must not become a flood of queries on
// the pool that serves everyone (adversary checklist, "cost"): one evaluation runs at a time,
// every probe that arrives meanwhile waits for it, and its verdict is reused for
// READYZ_CACHE_SECONDS. Each dependency gets READYZ_TIMEOUT_SECONDS to answer.
import express, { type Response } from 'express';
import type { Config } from '../config.ts';
import type { ParleyStore } from '../store/store.ts';

/** One extra dependency readiness waits for; `ready` resolving false or rejecting = not ready. */
export type ReadinessCheck = { name: string; ready: () => boolean | Promise<boolean> };

export type HealthDeps = {
  store: Pick<ParleyStore, 'ping'>;
  /** Further dependencies (e.g. `{ name: 'redis', ready: () => bus.up }`), checked with the store. */
  checks?: readonly ReadinessCheck[];
  /** True from the first moment of a graceful shutdown. */
  shuttingDown: () => boolean;
  readiness: Config['readiness'];
};

/** What a 503 asks the balancer to wait before it tries this instance again (seconds). */
const RETRY_AFTER_SECONDS = '5';

function within(check: ReadinessCheck, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
    timer.unref();
  });
  const answer = Promise.resolve()
    .then(() => check.ready())
    .then(
      (ready) => ready === true,
      () => false,
    );
  return Promise.race([answer, late]).finally(() => clearTimeout(timer));
}

function probeReply(res: Response, status: number, body: object): void {
  res.set('Cache-Control', 'no-store');
  if (status === 503) res.set('Retry-After', RETRY_AFTER_SECONDS);
  res.status(status).json(body);
}

export function healthRoutes(deps: HealthDeps): express.Router {
  const { timeoutMs, cacheMs } = deps.readiness;
  const checks: ReadinessCheck[] = [{ name: 'store', ready: () => deps.store.ping().then(() => true) }, ...(deps.checks ?? [])];
  let verdict: { at: number; failing: string[] } | undefined;
  let pending: Promise<string[]> | undefined;

  /** The names of the dependencies that did not answer: fresh, shared with a running evaluation, or reused. */
  const failing = (): Promise<string[]> => {
    if (verdict && Date.now() - verdict.at < cacheMs) return Promise.resolve(verdict.failing);
    pending ??= Promise.all(checks.map((check) => within(check, timeoutMs)))
      .then((results) => {
        const names = checks.filter((_, i) => !results[i]).map((check) => check.name);
        verdict = { at: Date.now(), failing: names };
        return names;
      })
      .finally(() => {
        pending = undefined;
      });
    return pending;
  };

  const router = express.Router();
  router.get('/healthz', (_req, res) => probeReply(res, 200, { status: 'ok' }));
  router.get('/readyz', async (_req, res) => {
    if (deps.shuttingDown()) return probeReply(res, 503, { status: 'unavailable', failing: ['shutting_down'] });
    const names = await failing();
    if (deps.shuttingDown()) return probeReply(res, 503, { status: 'unavailable', failing: ['shutting_down'] });
    if (names.length > 0) return probeReply(res, 503, { status: 'unavailable', failing: names });
    probeReply(res, 200, { status: 'ok' });
  });
  return router;
}
