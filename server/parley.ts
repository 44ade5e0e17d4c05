// The composition root: config in, a listening HTTPS + WSS server out. main.ts calls it
// for the real thing; tests call it with their own config (and, where a test proves a
// control matters, with that one control in config.disabled).
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import type { RequestHandler } from 'express';
import { isLoopbackAddress, type Config } from './config.ts';
import { createApp, staticClient } from './http/app.ts';
import { createSessionParser, loadSessionSecret, sessionExpiresAt } from './http/session.ts';
import { createAuditLog, type AuditLog } from './security/audit-log.ts';
import { createAddressOf } from './security/client-address.ts';
import { deriveKey } from './security/derived-keys.ts';
import { DeviceCookies } from './security/device-cookie.ts';
import { createPseudonym } from './security/log-pseudonym.ts';
import { createOriginCheck } from './security/origin.ts';
import { HashLimiter } from './security/passwords.ts';
import { RegistrationLimit } from './security/registration-limit.ts';
import { openBackend } from './backends.ts';
import { TokenBuckets } from './security/rate-limit.ts';
import { createMessageRenderer } from './security/render-message.ts';
import { SanitizerPool } from './security/sanitizer-pool.ts';
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

/**
 * The lab switch (PARLEY_UNSAFE_DISABLE) is on, but the socket is bound to an address other
 * machines can reach. main.ts reports it in one line; startParley has already closed everything.
 */
export class UnsafeBindError extends Error {
  override readonly name = 'UnsafeBindError';
}

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
  // The session secret also keys the cluster bus's envelopes (never stored in Redis), device cookies and log pseudonyms.
  const secret = loadSessionSecret(config);
  const backend = await openBackend(config, log, (data) => sessionExpiresAt(data, config.session), secret);
  const { revocations, bus, loginThrottle } = backend;
  const store = options.wrapStore ? options.wrapStore(backend.store) : backend.store;
  const sessionParser = createSessionParser(config, store, secret);
  const checkOrigin = createOriginCheck(config.appOrigins);
  const addressOf = createAddressOf(config.trustProxy);
  // The two server-side layers against stored XSS (decision 019); the lab switches `encoding` and
  // `sanitize` turn one off. With both off there is no pool: raw text is stored and broadcast as HTML.
  const layers = { encode: !config.disabled.has('encoding'), sanitize: !config.disabled.has('sanitize') };
  const pool = layers.encode || layers.sanitize ? new SanitizerPool(config.sanitize) : undefined;
  // Loads in the background while the store opens; awaited before listening.
  const poolReady = pool?.ready();
  poolReady?.catch(() => {}); // handled where it is awaited, below
  // Per-user message budget, shared by the frame reader (a token per frame) and the renderer (cost).
  const messageBuckets = new TokenBuckets(config.ws.messagesPerSecond, config.ws.messageBurst);
  const renderMessage = createMessageRenderer({
    pool,
    layers,
    buckets: config.disabled.has('rate-limit') ? undefined : messageBuckets,
    limits: { ...config.sanitize, burst: config.ws.messageBurst },
  });
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
    // Ready while the store answers and, with several instances, while the bus is up: an
    // instance that cannot hear the others refuses upgrades, so the balancer should skip it.
    health: {
      store,
      shuttingDown: () => shuttingDown,
      readiness: config.readiness,
      checks: config.redisUrl ? [{ name: 'redis', ready: async () => bus.up }] : [],
    },
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
    renderMessage,
    messageBuckets,
    bus,
    ...(options.dev ? { passThrough: (req) => String(req.headers['sec-websocket-protocol'] ?? '').startsWith('vite-') } : {}),
  });
  server.on('upgrade', ws.onUpgrade);
  // Silences handshake failures (scanners, TLS 1.0 clients, a client that never finishes before
  // TLS_HANDSHAKE_TIMEOUT_SECONDS): Node would otherwise log nothing but keep an 'error' path
  // open; the socket is already destroyed, and there is nothing a client could be told.
  server.on('tlsClientError', () => {});
  if (options.dev) await options.dev.attach(server);

  try {
    await poolReady; // fail closed: no listening server without a working sanitizer
  } catch (error) {
    await pool?.close();
    await store.close();
    throw error;
  }
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.port, config.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const bound = server.address() as AddressInfo;
  const port = bound.port;
  if (config.disabled.size > 0) {
    // The lab switch is judged by the address the socket is bound to, not by the HOST string:
    // a "localhost" that resolves to 0.0.0.0 passes any string check. This runs in the same
    // turn as the listen callback, before the event loop can accept a connection.
    if (!isLoopbackAddress(bound.address)) {
      server.close();
      await ws.drain(Date.now()); // no socket yet: stops the timers
      await pool?.close();
      await store.close();
      throw new UnsafeBindError(
        `PARLEY_UNSAFE_DISABLE is on, but HOST "${config.host}" bound ${bound.address}:${port}, which is not a loopback address; refusing to run with controls off.`,
      );
    }
    // A disabled control is a security event: it goes to the audit log, not only to the console.
    log('unsafe_controls_disabled', { detail: [...config.disabled].join(','), count: config.disabled.size });
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
      // Frames already received finish their handlers (and their commits) before the store closes.
      await ws.drain(Date.now() + config.shutdownDrainMs);
      server.closeAllConnections(); // HTTP requests still running after the grace
      await Promise.race([httpClosed, new Promise((resolve) => setTimeout(resolve, 1000).unref())]);
      await store.close();
      await pool?.close();
    },
  };
}
