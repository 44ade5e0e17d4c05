// The composition root: config in, a listening HTTPS + WSS server out. main.ts calls it
// for the real thing; tests call it with their own config (and, where a test proves a
// control matters, with that one control in config.disabled).
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { RequestHandler } from 'express';
import type { Config } from './config.ts';
import { createApp, staticClient } from './http/app.ts';
import { createSessionParser, loadSessionSecret, sessionExpiresAt } from './http/session.ts';
import { createAuditLog, type AuditLog } from './security/audit-log.ts';
import { createAddressOf } from './security/client-address.ts';
import { LoginThrottle } from './security/login-throttle.ts';
import { createOriginCheck } from './security/origin.ts';
import { HashLimiter } from './security/passwords.ts';
import { sanitizeMessage } from './security/sanitize.ts';
import { Revocations } from './store/revocations.ts';
import { SqliteStore } from './store/sqlite.ts';
import type { ParleyStore } from './store/store.ts';
import { loadCertificate, tlsOptions, type Certificate } from './tls.ts';
import { createWsSide, type WsSide } from './ws/server.ts';

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
  const store = new SqliteStore(config.dataDir, (data) => sessionExpiresAt(data, config.session));
  const sessionParser = createSessionParser(config, store, loadSessionSecret(config));
  const checkOrigin = createOriginCheck(config.appOrigins);
  const addressOf = createAddressOf(config.trustProxy);
  const revocations = new Revocations();
  // Lab/test switch: with 'sanitize' disabled, raw text is stored and broadcast as HTML.
  const sanitize = config.disabled.has('sanitize') ? (text: string) => text : sanitizeMessage;

  const app = createApp({
    config,
    store,
    sessionParser,
    checkOrigin,
    throttle: new LoginThrottle(config.login),
    hashing: new HashLimiter(config.hashing.maxConcurrent, config.hashing.maxQueue),
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
  server.headersTimeout = config.timeouts.headersMs;

  const ws = createWsSide({
    config,
    store,
    sessionParser,
    checkOrigin,
    revocations,
    addressOf,
    log,
    sanitize,
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
    close: async () => {
      ws.closeAll();
      ws.stop();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      await store.close();
    },
  };
}
