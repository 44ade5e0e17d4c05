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
import { createOriginCheck } from './security/origin.ts';
import { HashLimiter } from './security/passwords.ts';
import { TokenBuckets } from './security/rate-limit.ts';
import { createMessageRenderer } from './security/render-message.ts';
import { SanitizerPool } from './security/sanitizer-pool.ts';
import { openBackend } from './store/index.ts';
import type { ParleyStore } from './store/store.ts';
import { loadCertificate, tlsOptions, type Certificate } from './tls.ts';
import { createWsSide, type WsSide } from './ws/server.ts';
import { refuse } from './ws/upgrade-gate.ts';

/** How long a graceful shutdown waits for clients to complete the close handshake. */
const SHUTDOWN_DRAIN_MS = 5000;

export type Parley = {
  server: https.Server;
  port: number;
  certificate: Certificate;
  store: ParleyStore;
  ws: WsSide;
  close: () => Promise<void>;
};

export type ParleyOptions = {
  log?: AuditLog;
  /** Dev mode: Vite's middleware instead of the static build, and its HMR upgrade passed through. */
  dev?: { client: RequestHandler; attach: (server: https.Server) => Promise<void> };
};

export async function startParley(config: Config, options: ParleyOptions = {}): Promise<Parley> {
  const log = options.log ?? createAuditLog();
  const certificate = await loadCertificate(config);
  // SQLite, or PostgreSQL and/or Redis when configured: the only place that knows which.
  const { store, revocations, bus, loginThrottle } = await openBackend(config, log, (data) => sessionExpiresAt(data, config.session));
  const sessionParser = createSessionParser(config, store, loadSessionSecret(config));
  const checkOrigin = createOriginCheck(config.appOrigins);
  const addressOf = createAddressOf(config.trustProxy);
  // Lab/test switch: with 'sanitize' disabled, no pool: raw text is stored and broadcast as HTML.
  const pool = config.disabled.has('sanitize') ? undefined : new SanitizerPool(config.sanitize);
  // Loads in the background while the store opens; awaited before listening.
  const poolReady = pool?.ready();
  poolReady?.catch(() => {}); // handled where it is awaited, below
  // Per-user message budget, shared by the frame reader (a token per frame) and the renderer (cost).
  const messageBuckets = new TokenBuckets(config.ws.messagesPerSecond, config.ws.messageBurst);
  const renderMessage = createMessageRenderer({
    pool,
    buckets: config.disabled.has('rate-limit') ? undefined : messageBuckets,
    limits: { ...config.sanitize, burst: config.ws.messageBurst },
  });

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
    client: options.dev?.client ?? staticClient(),
  });

  const server = https.createServer(
    {
      ...tlsOptions(certificate, config),
      // Slow-loris bounds, far below Node's defaults (60 s headers, 300 s request).
      headersTimeout: config.timeouts.headersMs,
      requestTimeout: config.timeouts.requestMs,
      keepAliveTimeout: config.timeouts.keepAliveMs,
      connectionsCheckingInterval: Math.min(1000, config.timeouts.headersMs),
      maxHeaderSize: 16 * 1024,
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
  // A client that never sends a byte still holds a socket; the TLS handshake timeout cuts it.
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
    close: async () => {
      // Graceful shutdown, in this order: stop accepting (no new connections, no new upgrades);
      // tell every client to reconnect (1001) after the frames already queued for it; wait,
      // bounded, for the close handshakes (a socket's frames are processed in order and none
      // after its close); then end HTTP and, last, the store — so whatever a client saw
      // acknowledged is committed before the process exits.
      const httpClosed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.off('upgrade', ws.onUpgrade);
      server.on('upgrade', (_req, socket: Duplex) => {
        socket.on('error', () => socket.destroy());
        refuse(socket, { status: 503, error: 'server_busy', message: 'The server is shutting down. Retry.' });
      });
      server.closeIdleConnections();
      const open = [...ws.registry.all()];
      ws.closeAll();
      const deadline = Date.now() + SHUTDOWN_DRAIN_MS;
      while (ws.registry.size > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
      for (const connection of [...ws.registry.all()]) connection.terminate(); // did not answer the close in time
      // Frames already received finish their handlers (and their commits) before the store closes.
      const left = Math.max(0, deadline - Date.now());
      await Promise.race([Promise.all(open.map((c) => c.settled)), new Promise((resolve) => setTimeout(resolve, left).unref())]);
      ws.stop();
      server.closeAllConnections(); // HTTP requests still running after the grace
      await Promise.race([httpClosed, new Promise((resolve) => setTimeout(resolve, 1000).unref())]);
      await store.close();
      await pool?.close();
    },
  };
}
