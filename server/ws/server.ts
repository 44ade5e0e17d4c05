// The WebSocket side, assembled: ws server options, the gate, connections, heartbeat,
// and the revocation subscription that makes live sockets follow their session.
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer } from 'ws';
import { CLOSE } from '../../shared/protocol.ts';
import type { Config } from '../config.ts';
import { sessionExpiresAt, type SessionParser } from '../http/session.ts';
import type { AuditLog } from '../security/audit-log.ts';
import type { AddressOf } from '../security/client-address.ts';
import type { OriginVerdict } from '../security/origin.ts';
import type { TokenBuckets } from '../security/rate-limit.ts';
import type { RenderMessage } from '../security/render-message.ts';
import type { Revocations } from '../store/revocations.ts';
import type { ParleyStore } from '../store/store.ts';
import { ClusterFanout, type RoomBus } from './cluster-fanout.ts';
import { Connection } from './connection.ts';
import { Fanout } from './fanout.ts';
import { createFrameReader } from './frames.ts';
import { createHandlers } from './handlers.ts';
import { Registry } from './registry.ts';
import { createUpgradeGate } from './upgrade-gate.ts';

export type WsDeps = {
  config: Config;
  store: ParleyStore;
  sessionParser: SessionParser;
  checkOrigin: (origin: string | undefined) => OriginVerdict;
  revocations: Revocations;
  addressOf: AddressOf;
  log: AuditLog;
  renderMessage: RenderMessage;
  /** Per-user message budget: a frame takes a token here, an expensive message more in renderMessage. */
  messageBuckets: TokenBuckets;
  passThrough?: (req: IncomingMessage) => boolean;
  /** With several instances (REDIS_URL): carries room messages to the others. */
  bus?: RoomBus | undefined;
};


export type WsSide = {
  onUpgrade: (req: IncomingMessage, socket: Duplex, head: Buffer) => void;
  registry: Registry;
  /** Graceful shutdown: tell every client to reconnect elsewhere (1001). */
  closeAll: (code?: number, reason?: string) => void;
  stop: () => void;
};

export function createWsSide(deps: WsDeps): WsSide {
  const { config, store, revocations, log } = deps;
  const wss = new WebSocketServer({
    noServer: true, // the gate decides; ws only performs the handshake it is handed
    maxPayload: config.ws.maxPayload, // OWASP WS: bound message size (oversize → 1009)
    perMessageDeflate: false, // compression + secrets = CRIME/BREACH-style leaks, and a zip-bomb vector
    clientTracking: false, // the Registry tracks connections
  });
  const registry = new Registry();
  const { bus } = deps;
  // One instance: the local Fanout. Several: the same, plus Redis pub/sub to and from the others.
  const fanout = bus ? new ClusterFanout(bus) : new Fanout();
  const { handle, pushRooms } = createHandlers({
    store,
    fanout,
    registry,
    renderMessage: deps.renderMessage,
    log,
    onMembershipChanged: bus && ((user) => bus.publishMembership(user)),
  });
  // An invite or removal made on another instance: refresh this user's sockets here too.
  bus?.subscribeMembership((user) =>
    void pushRooms(user).catch((error: unknown) =>
      log('server_error', { user, reason: 'membership_refresh', detail: error instanceof Error ? error.message : 'unknown' }),
    ),
  );
  const readFrame = createFrameReader(config, log, deps.messageBuckets);
  const sessionChecked = !config.disabled.has('session');

  async function sessionDeadline(connection: Connection, touch: boolean): Promise<number | undefined> {
    if (!sessionChecked) return Date.now() + config.session.idleMs;
    let unavailable: unknown;
    const data = await new Promise<import('express-session').SessionData | null | undefined>((resolve) =>
      store.sessions.get(connection.sid, (error, value) => {
        if (error) unavailable = error;
        resolve(error ? undefined : value);
      }),
    );
    if (unavailable !== undefined) {
      // The session cannot be checked (store outage): fail closed, but do not pretend the
      // session ended — the client is told to come back, not to sign in again.
      log('server_error', { user: connection.user, reason: 'session_store', detail: String(unavailable instanceof Error ? unavailable.message : unavailable) });
      connection.sendError('server_busy', 'The server is busy. Reconnecting…');
      connection.close(CLOSE.tryAgainLater, 'try again later');
      return undefined;
    }
    if (!data?.user || data.user !== connection.user) return undefined;
    if (touch) {
      data.lastSeenAt = Date.now();
      await store.sessions.extend(connection.sid, data); // update-only: never revives an ended session
    }
    return sessionExpiresAt(data, config.session);
  }

  const connectionDeps = {
    readFrame,
    handle,
    sessionDeadline,
    log,
    maxBufferedBytes: config.ws.maxBufferedBytes,
    touchEveryMs: Math.min(60_000, config.session.idleMs / 4),
    onClose: (connection: Connection) => {
      fanout.unsubscribeAll(connection);
      registry.remove(connection);
    },
  };

  const onUpgrade = createUpgradeGate({
    config,
    wss,
    checkOrigin: deps.checkOrigin,
    sessionParser: deps.sessionParser,
    registry,
    addressOf: deps.addressOf,
    log,
    ...(deps.passThrough ? { passThrough: deps.passThrough } : {}),
    onAdmitted: ({ ws, ...identity }) => {
      const connection = new Connection(ws, identity, connectionDeps);
      registry.add(connection);
      log('ws_open', { user: identity.user, ip: identity.ip });
      store.roomsFor(identity.user).then(
        (rooms) => connection.send({ type: 'rooms', user: identity.user, rooms }),
        () => connection.sendError('internal', 'Could not load your rooms.'),
      );
    },
  });

  // ASVS 7.4.1/7.4.3: logout and password change end live sockets too, not only cookies.
  // With REDIS_URL, notices from every instance arrive here (server/store/revocations.ts).
  const unsubscribe = revocations.subscribe((revocation) => {
    const sockets = revocation.kind === 'session' ? registry.ofSessionHash(revocation.sidHash) : registry.ofUser(revocation.user);
    for (const connection of [...sockets]) connection.endSession(revocation.reason === 'expired' ? 'session expired' : 'session ended');
  });

  // Heartbeat: ping every interval; a peer that missed the previous ping is terminated.
  const heartbeat = setInterval(() => {
    for (const connection of registry.all()) {
      if (!connection.ping()) {
        log('ws_heartbeat_timeout', { user: connection.user, ip: connection.ip });
        connection.terminate();
      }
    }
  }, config.ws.heartbeatMs);
  heartbeat.unref();

  return {
    onUpgrade,
    registry,
    closeAll: (code = CLOSE.goingAway, reason = 'server shutting down') => {
      for (const connection of [...registry.all()]) connection.close(code, reason);
    },
    stop: () => {
      clearInterval(heartbeat);
      unsubscribe();
      wss.close();
    },
  };
}
