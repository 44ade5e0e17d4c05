// The WebSocket side, assembled: ws server options, the gate, connections, heartbeat,
// the revocation subscription that makes live sockets follow their session, and what
// happens when the cluster bus is lost (every socket closed 1013: decision 013).
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer } from 'ws';
import { CLOSE } from '../../shared/protocol.ts';
import type { Config } from '../config.ts';
import type { SessionParser } from '../http/session.ts';
import type { AuditLog } from '../security/audit-log.ts';
import type { AddressOf } from '../security/client-address.ts';
import type { OriginVerdict } from '../security/origin.ts';
import type { ClusterBus } from '../cluster/bus.ts';
import type { Revocations } from '../cluster/revocations.ts';
import { createHostCheck } from '../security/host.ts';
import { createRepeatLog } from '../security/repeat-log.ts';
import { TokenBuckets } from '../security/rate-limit.ts';
import type { RenderMessage } from '../security/render-message.ts';
import type { ParleyStore } from '../store/store.ts';
import { ClusterFanout } from './cluster-fanout.ts';
import { Connection } from './connection.ts';
import { createFrameReader } from './frames.ts';
import { createHandlers } from './handlers.ts';
import { Presence } from './presence.ts';
import { Registry } from './registry.ts';
import { RoomLists } from './room-lists.ts';
import { createSessionCheck } from './session-check.ts';
import { createUpgradeGate, refuse } from './upgrade-gate.ts';

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
  /** What instances tell each other (a LocalBus for one instance). */
  bus: ClusterBus;
};

export type WsSide = {
  onUpgrade: (req: IncomingMessage, socket: Duplex, head: Buffer) => void;
  registry: Registry;
  /**
   * Graceful shutdown of the socket side: tell every client to reconnect elsewhere (1001)
   * after the frames already queued for it; wait, until `deadline`, for the close handshakes;
   * cut those that did not answer; wait (same deadline) for the frames already received to
   * finish their handlers and commits; then stop the timers.
   */
  drain: (deadline: number) => Promise<void>;
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
  // Presence follows live subscriptions; its changes go to the room's live subscribers only, coalesced.
  const presence: Presence = new Presence(bus, { refreshMs: config.rooms.presenceRefreshMs, coalesceMs: config.rooms.presenceCoalesceMs }, (room, frame) =>
    fanout.broadcast(room, frame),
  );
  // The local Fanout, plus the bus to and from the other instances (nothing, for one instance).
  const fanout = new ClusterFanout(bus, presence.live);
  const roomLists = new RoomLists(store, registry, fanout);
  const { handle } = createHandlers({
    store,
    fanout,
    registry,
    renderMessage: deps.renderMessage,
    log,
    logRepeated: createRepeatLog(log, config.logRepeatWindowMs),
    historyPageSize: config.ws.historyPageSize,
    roomLists,
    presence,
    caps: config.rooms,
    // A bucket of one hour's invitations, refilled continuously.
    inviteBuckets: new TokenBuckets(config.rooms.invitationsPerHour / 3600, config.rooms.invitationsPerHour),
    onMembershipChanged: (user) => bus.publishMembership(user),
  });
  // An invitation, acceptance or removal made on another instance: refresh this user's sockets here too.
  // If the refresh cannot read the store, the user's rooms here may be stale (a removal among
  // them): fail closed, as on a bus loss — their sockets here come back later (1013) and re-join
  // through every check (decision 013).
  bus.onMembership(
    (user) =>
      void roomLists.push(user).catch((error: unknown) => {
        log('server_error', { user, reason: 'membership_refresh', detail: error instanceof Error ? error.message : 'unknown' });
        for (const connection of [...registry.ofUser(user)]) tryAgainLater(connection);
      }),
  );
  const readFrame = createFrameReader(config, log, deps.messageBuckets);
  const sessionDeadline = createSessionCheck(config, store.sessions, log);

  function tryAgainLater(connection: Connection): void {
    connection.sendError('server_busy', 'The server could not check what this connection may receive. Reconnecting…');
    connection.close(CLOSE.tryAgainLater, 'try again later');
  }

  const connectionDeps = {
    readFrame,
    handle,
    sessionDeadline,
    log,
    maxBufferedBytes: config.ws.maxBufferedBytes,
    slowConsumerGraceMs: config.ws.slowConsumerGraceMs,
    maxBufferedHardBytes: config.ws.maxBufferedHardBytes,
    touchEveryMs: Math.min(60_000, config.session.idleMs / 4),
    recheckMs: config.session.recheckMs,
    onClose: (connection: Connection) => {
      fanout.dropAll(connection);
      registry.remove(connection);
    },
  };

  const gate = createUpgradeGate({
    config,
    wss,
    checkOrigin: deps.checkOrigin,
    checkHost: createHostCheck(config.appOrigins),
    sessionParser: deps.sessionParser,
    registry,
    addressOf: deps.addressOf,
    log,
    ...(deps.passThrough ? { passThrough: deps.passThrough } : {}),
    onAdmitted: ({ ws, ...identity }) => {
      const connection = new Connection(ws, identity, connectionDeps);
      registry.add(connection);
      log('ws_open', { user: identity.user, ip: identity.ip });
      // The bus dropped while this handshake awaited the session store: treated as if it had
      // been open when the bus was lost (below), since it may already have missed something.
      if (!bus.up) return tryAgainLater(connection);
      // The gate read the session before the handshake; a logout or password change in between
      // found no socket to close. Now that revocations can find this one, read it once more.
      void sessionDeadline(connection, false).then(
        (deadline) => {
          if (deadline === undefined || deadline <= Date.now()) connection.endSession('session ended');
        },
        () => connection.endSession('session ended'),
      );
      roomLists.greet(connection).catch(() => connection.sendError('internal', 'Could not load your rooms.'));
    },
  });

  // While the bus is down this instance cannot hear the others (messages, removals,
  // revocations), so it admits nobody: 503 server_busy, the client retries, and gets in again
  // through the whole gate once the bus is back (decision 013).
  const onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    if (bus.up) return gate(req, socket, head);
    socket.on('error', () => socket.destroy());
    log('upgrade_refused', { reason: 'bus_down', status: 503, ip: deps.addressOf(req) });
    refuse(socket, { status: 503, error: 'server_busy', message: 'The server is busy. Try again in a moment.' });
  };

  // The bus was lost: anything another instance published since (a message, a removal, a
  // logout) may never arrive here, so no socket may keep relying on it. Every socket is told
  // to come back later (1013); reconnecting, it passes the gate again (a revoked session gets
  // 401), re-joins with a membership check and fills the gap from history.
  bus.onLost(() => {
    for (const connection of [...registry.all()]) tryAgainLater(connection);
  });

  // ASVS 7.4.1/7.4.3: logout and password change end live sockets too, not only cookies.
  // With REDIS_URL, notices from every instance arrive here (server/cluster/revocations.ts).
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
    drain: async (deadline) => {
      const open = [...registry.all()];
      for (const connection of open) connection.close(CLOSE.goingAway, 'server shutting down');
      while (registry.size > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
      for (const connection of [...registry.all()]) connection.terminate(); // did not answer the close in time
      const left = Math.max(0, deadline - Date.now());
      await Promise.race([Promise.all(open.map((c) => c.settled)), new Promise((resolve) => setTimeout(resolve, left).unref())]);
      clearInterval(heartbeat);
      presence.close();
      unsubscribe();
      wss.close();
    },
  };
}
