// The composition root: config in, a listening HTTPS + WSS server out. main.ts calls it
// for the real thing; tests call it with their own config (and, where a test proves a
// control matters, with that one control in config.disabled).
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import type { RequestHandler } from 'express';
import type { Config } from './config.ts';
import { createApp, staticClient } from './http/app.ts';
import { createSessionParser, loadSessionSecret, sessionExpiresAt } from './http/session.ts';
import { createAuditLog, type AuditLog } from './security/audit-log.ts';
import { createAddressOf } from './security/client-address.ts';
import { deriveKey } from './security/derived-keys.ts';
import { DeviceCookies } from './security/device-cookie.ts';
import { createPseudonym } from './security/log-pseudonym.ts';
import { LoginThrottle, type LoginGuard, type LoginLimiter } from './security/login-throttle.ts';
import { RedisLoginThrottle } from './security/redis-login-throttle.ts';
import { createOriginCheck } from './security/origin.ts';
import { HashLimiter } from './security/passwords.ts';
import { RegistrationLimit } from './security/registration-limit.ts';
import { sanitizeMessage } from './security/sanitize.ts';
import { openBackend } from './store/index.ts';
import { redisClient } from './store/redis.ts';
import type { ParleyStore } from './store/store.ts';
import { loadCertificate, tlsOptions, type Certificate } from './tls.ts';
import { createWsSide, type WsSide } from './ws/server.ts';
import { refuse } from './ws/upgrade-gate.ts';

export type Parley = {
  server: https.Server;
  port: number;
  certificate: Certificate;
  store: ParleyStore;
  ws: WsSide;
  /** Live sockets of a user (tests and tooling: read, never reach into the registry). */
  connectionsOf: (user: string) => number;
  close: () => Promise<void>;
};

export type ParleyOptions = {
  log?: AuditLog;
  /** Dev mode: Vite's middleware instead of the static build, and its HMR upgrade passed through. */
  dev?: { client: RequestHandler; attach: (server: https.Server) => Promise<void> };
  /** Tests only: wrap the store (e.g. to make every call slow and expose check-then-act races). */
  wrapStore?: (store: ParleyStore) => ParleyStore;
};

export async function startParley(config: Config, options: ParleyOptions = {}): Promise<Parley> {
  const log = options.log ?? createAuditLog();
  const certificate = await loadCertificate(config);
  // SQLite, or PostgreSQL and/or Redis when configured: the only place that knows which.
  const backend = await openBackend(config, log, (data) => sessionExpiresAt(data, config.session));
  const { revocations, bus } = backend;
  const store = options.wrapStore ? options.wrapStore(backend.store) : backend.store;
  const { guard: loginThrottle, close: closeLoginThrottle } = await loginGuard(config, log, backend.loginThrottle);
  const secret = loadSessionSecret(config);
  const sessionParser = createSessionParser(config, store, secret);
  const checkOrigin = createOriginCheck(config.appOrigins);
  const addressOf = createAddressOf(config.trustProxy);
  // Lab/test switch: with 'sanitize' disabled, raw text is stored and broadcast as HTML.
  const sanitize = config.disabled.has('sanitize') ? (text: string) => text : sanitizeMessage;
  // GET /readyz answers 503 from the first moment of close(): the balancer stops sending new users.
  let shuttingDown = false;

  const app = createApp({
    config,
    store,
    sessionParser,
    checkOrigin,
    throttle: loginThrottle,
    // Separate queues: a flood of registrations cannot starve logins (or the reverse).
    hashing: {
      login: new HashLimiter(config.hashing.maxConcurrent, config.hashing.maxQueue),
      register: new HashLimiter(config.hashing.maxConcurrent, config.hashing.maxQueue),
    },
    revocations,
    log,
    addressOf,
    deviceCookies: new DeviceCookies(deriveKey(secret, 'device-cookie'), config.login.deviceCookieMaxAgeMs),
    registrations: new RegistrationLimit(config.register),
    pseudonym: createPseudonym(deriveKey(secret, 'log-pseudonym')),
    client: options.dev?.client ?? staticClient(),
    health: { store, shuttingDown: () => shuttingDown, readiness: config.readiness },
  });

  const server = https.createServer(
    {
      ...tlsOptions(certificate, config),
      // Slow-loris bounds, far below Node's defaults (60 s headers, 300 s request).
      headersTimeout: config.timeouts.headersMs,
      requestTimeout: config.timeouts.requestMs,
      keepAliveTimeout: config.timeouts.keepAliveMs,
      connectionsCheckingInterval: Math.min(1000, config.timeouts.headersMs),
      maxHeaderSize: config.http.maxHeaderBytes,
    },
    app,
  );

  const ws = createWsSide({
    config,
    store,
    sessionParser,
    checkOrigin,
    revocations,
    addressOf,
    log,
    sanitize,
    bus,
    ...(options.dev ? { passThrough: (req) => String(req.headers['sec-websocket-protocol'] ?? '').startsWith('vite-') } : {}),
  });
  server.on('upgrade', ws.onUpgrade);
  // A client that never sends a byte still holds a socket; the TLS handshake timeout cuts it.
  server.on('tlsClientError', () => {});
  if (options.dev) await options.dev.attach(server);

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.port, config.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  if (config.disabled.size > 0) {
    process.stderr.write(
      `\n!!! PARLEY_UNSAFE_DISABLE: these security controls are OFF: ${[...config.disabled].join(', ')}.\n` +
        '!!! For a workshop exercise on loopback only. Never run this way anywhere else.\n\n',
    );
  }
  log('server_started', { detail: `https://${config.host}:${port}` });

  return {
    server,
    port,
    certificate,
    store,
    ws,
    connectionsOf: (user) => ws.registry.ofUser(user).size,
    close: async () => {
      // Graceful shutdown, in this order: stop accepting (no new connections, no new upgrades);
      // tell every client to reconnect (1001) after the frames already queued for it; wait,
      // bounded, for the close handshakes (a socket's frames are processed in order and none
      // after its close); then end HTTP and, last, the store — so whatever a client saw
      // acknowledged is committed before the process exits.
      shuttingDown = true;
      const httpClosed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.off('upgrade', ws.onUpgrade);
      server.on('upgrade', (_req, socket: Duplex) => {
        socket.on('error', () => socket.destroy());
        refuse(socket, { status: 503, error: 'server_busy', message: 'The server is shutting down. Retry.' });
      });
      server.closeIdleConnections();
      const open = [...ws.registry.all()];
      ws.closeAll();
      const deadline = Date.now() + config.shutdownDrainMs;
      while (ws.registry.size > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
      for (const connection of [...ws.registry.all()]) connection.terminate(); // did not answer the close in time
      // Frames already received finish their handlers (and their commits) before the store closes.
      const left = Math.max(0, deadline - Date.now());
      await Promise.race([Promise.all(open.map((c) => c.settled)), new Promise((resolve) => setTimeout(resolve, left).unref())]);
      ws.stop();
      server.closeAllConnections(); // HTTP requests still running after the grace
      await Promise.race([httpClosed, new Promise((resolve) => setTimeout(resolve, 1000).unref())]);
      await closeLoginThrottle();
      await store.close();
    },
  };
}

/**
 * MERGE BRIDGE, to delete once store/index.ts hands out the throttle of
 * security/redis-login-throttle.ts as Backend.loginThrottle (typed LoginGuard): until then
 * the backend's Redis throttle is the old one, so with REDIS_URL the new one runs here on a
 * connection of its own.
 */
async function loginGuard(config: Config, log: AuditLog, fromBackend: LoginLimiter): Promise<{ guard: LoginGuard; close: () => Promise<void> }> {
  if (fromBackend instanceof LoginThrottle || fromBackend instanceof RedisLoginThrottle) return { guard: fromBackend, close: async () => {} };
  if (!config.redisUrl) return { guard: new LoginThrottle(config.login), close: async () => {} };
  const client = redisClient(config.redisUrl, 'login-throttle', log);
  await client.connect();
  return {
    guard: new RedisLoginThrottle(client, config.login),
    close: async () => {
      try {
        if (client.isOpen) await client.close();
        else client.destroy();
      } catch {
        // already closed
      }
    },
  };
}
