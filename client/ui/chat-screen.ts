// The chat screen: wires the socket, the in-memory state and the views together.
// Flow: start() opens the socket → the server sends `rooms` → we join the active
// room (and, after a reconnect, every room we had joined) → `history` + live
// `message` frames fill the log. stop() drops everything (ASVS 14.3.1).
import { CLOSE, LOBBY } from '../../shared/protocol.ts';
import type { ClientFrame, ErrorFrame, HistoryFrame, MessageFrame, RoomEventFrame, RoomsFrame, ServerFrame } from '../../shared/protocol.ts';
import { me } from '../api.ts';
import { ChatSocket } from '../socket.ts';
import type { ConnectionState, SessionCheck } from '../socket.ts';
import { ChatState } from '../state.ts';
import { createAccount } from './account.ts';
import { createComposer } from './composer.ts';
import { createConnectionIndicator } from './connection-indicator.ts';
import { byId } from './dom.ts';
import { createMessageList } from './message-list.ts';
import { announce, confirmNext, expectConfirmation, showConnectionError, showError } from './notices.ts';
import { createInvitationList } from './invitations.ts';
import { createMemberList } from './member-list.ts';
import { createRoomEvents, describeEvent } from './room-events.ts';
import { createRoomList } from './room-list.ts';
import { createRoomsPanel } from './rooms-panel.ts';
import { createTabTitle } from './tab-title.ts';

export type ChatScreenOptions = {
  /** The session ended (expired, revoked): back to the sign-in screen with this message. */
  onSessionEnded(message: string): void;
  onLoggedOut(): void;
};

export type ChatScreen = {
  start(username: string): void;
  stop(): void;
};

/** ASVS 4.4.1: always WSS, on our own origin (the session cookie rides along). */
function socketUrl(): string {
  return `wss://${location.host}/ws`;
}

async function checkSession(): Promise<SessionCheck> {
  try {
    return (await me()) ? 'valid' : 'ended';
  } catch {
    return 'unknown'; // no answer: keep retrying rather than signing the user out
  }
}

export function createChatScreen(options: ChatScreenOptions): ChatScreen {
  const screen = byId('chat-screen', HTMLElement);
  const currentUser = byId('current-user', HTMLElement);
  const roomTitle = byId('room-title', HTMLElement);

  let state = new ChatState('');
  let socket: ChatSocket | null = null;
  /** Set on every (re)connect: the next `rooms` frame re-joins our rooms. */
  let rejoinPending = false;
  /** The room we asked to create, selected once it shows up in the room list. */
  let creating: string | null = null;
  /** The invitation we accepted, selected once its room shows up in the room list. */
  let accepting: string | null = null;
  /** Invitations we declined, announced once the server has removed them. */
  const declining = new Set<string>();

  const title = createTabTitle();
  const indicator = createConnectionIndicator(() => socket?.reconnectNow());
  const roomList = createRoomList((room) => selectRoom(room, true));
  const messages = createMessageList({
    loadOlder,
    loadNewer,
    retry(clientId) {
      const failed = state.getPending(clientId);
      if (!failed) return;
      if (socket?.state !== 'connected') {
        showConnectionError('Not connected right now. Retry once the connection is back.');
        return;
      }
      state.removePending(clientId);
      // The same clientId: if the first try was stored after all, the server answers with its id
      // and stores nothing twice.
      sendText(failed.room, failed.text, clientId);
    },
    discard(clientId) {
      state.removePending(clientId);
      renderMessages();
    },
  });
  const composer = createComposer((text) => (state.active ? sendText(state.active, text) : false));
  const roomsPanel = createRoomsPanel({
    create(room) {
      creating = room;
      return sendFrame({ type: 'create', room });
    },
    invite(user) {
      // Confirmed when the server answers with the "invited" line (onRoomEvent), or refused by an error.
      const room = state.active;
      if (!room || !sendFrame({ type: 'invite', room, user })) return false;
      expectConfirmation(`Invitation for ${user} sent.`); // shown when the server answers, not before
      return true;
    },
  });
  const invitations = createInvitationList({
    accept(room) {
      if (sendFrame({ type: 'accept', room })) accepting = room;
    },
    decline(room) {
      // Confirmed when the server takes the invitation away (invitation_removed).
      if (sendFrame({ type: 'decline', room })) declining.add(room);
    },
  });
  const memberList = createMemberList({
    remove(user) {
      // Confirmed by the "removed" / "uninvited" line in the room, which also refreshes the list.
      const room = state.active;
      if (room && sendFrame({ type: 'remove', room, user })) expectConfirmation(`${user} was removed from ${room}.`);
    },
    leave() {
      const room = state.active;
      if (room && state.room(room)?.private) sendFrame({ type: 'leave', room });
    },
  });
  const roomEvents = createRoomEvents();
  const account = createAccount({
    currentUser: () => state.user,
    onLoggedOut: () => options.onLoggedOut(),
    onSessionEnded: (message) => options.onSessionEnded(message),
  });

  // ---- socket events -----------------------------------------------------------

  function onState(connection: ConnectionState): void {
    indicator.set(connection);
    if (connection !== 'connected') {
      // Whatever was in flight on the old socket may or may not have been stored.
      state.failUnconfirmed('Connection lost before the server confirmed this message; it may still have arrived.');
      state.cancelLoadingOlder();
      renderMessages();
    }
    renderComposer();
  }

  function onFrame(frame: ServerFrame): void {
    switch (frame.type) {
      case 'rooms':
        return onRooms(frame);
      case 'history':
        return onHistory(frame);
      case 'message':
        return onMessage(frame);
      case 'ack':
        if (state.ack(frame.clientId, frame.id)) renderMessages();
        return;
      case 'error':
        return onError(frame);
      case 'invitations':
        state.setInvitations(frame.invitations);
        return invitations.render(state.invitations);
      case 'invitation_added':
        state.addInvitation(frame.invitation);
        invitations.render(state.invitations);
        return announce(`${frame.invitation.from} invited you to ${frame.invitation.room}.`);
      case 'invitation_removed':
        state.removeInvitation(frame.room);
        if (declining.delete(frame.room)) announce(`Invitation to ${frame.room} declined.`);
        return invitations.render(state.invitations);
      case 'room_added':
        state.addRoom(frame.room);
        return afterRoomsChanged(state.active, []);
      case 'room_removed': {
        const previous = state.active;
        const wasKnown = Boolean(state.room(frame.room));
        state.removeRoom(frame.room);
        return afterRoomsChanged(previous, wasKnown ? [frame.room] : []);
      }
      case 'members':
        state.setMembers(frame);
        if (frame.room === state.active) renderPeople();
        return;
      case 'presence':
        state.setOnline(frame.room, frame.online);
        if (frame.room === state.active) renderPeople();
        return;
      case 'presence_change':
        state.setPresence(frame.room, frame.user, frame.online);
        if (frame.room === state.active) renderPeople();
        return;
      case 'room_event':
        return onRoomEvent(frame);
    }
  }

  function onRoomEvent(frame: RoomEventFrame): void {
    if (!state.room(frame.room)) return;
    // The server's answer to this user's own invite or removal: its waiting confirmation says it.
    const ownAnswer = frame.by === state.user && (frame.event === 'invited' || frame.event === 'removed' || frame.event === 'uninvited');
    if (ownAnswer) confirmNext();
    state.addEvent(frame);
    if (frame.room !== state.active) return;
    roomEvents.render(state.events(frame.room));
    if (!ownAnswer) announce(describeEvent(frame));
    // Who is in the room changed: ask for the list again (the server authorizes it again).
    if (state.room(frame.room)?.private) sendFrame({ type: 'members', room: frame.room });
  }

  function onRooms(frame: RoomsFrame): void {
    const previous = state.active;
    const removed = state.setRooms(frame.user, frame.rooms);
    currentUser.textContent = frame.user;
    afterRoomsChanged(previous, removed);
  }

  /** The room list changed (whole, or one room added or removed). */
  function afterRoomsChanged(previous: string | null, removed: string[]): void {
    if (previous && removed.includes(previous)) announce(`You no longer have access to ${previous}.`);

    if (rejoinPending) {
      rejoinPending = false;
      for (const room of state.joined) sendFrame({ type: 'join', room });
      // Who is in the active room may have changed while we were away.
      if (state.active && state.room(state.active)?.private) sendFrame({ type: 'members', room: state.active });
    }
    if (creating && state.room(creating)) {
      const room = creating;
      creating = null;
      roomsPanel.created();
      announce(`Room ${room} created.`);
      selectRoom(room, true);
      return;
    }
    if (accepting && state.room(accepting)) {
      const room = accepting;
      accepting = null;
      announce(`You joined ${room}.`);
      selectRoom(room, true);
      return;
    }
    if (state.active === null) {
      const fallback = state.room(LOBBY) ? LOBBY : state.rooms[0]?.name;
      if (fallback) {
        selectRoom(fallback, previous === null); // first load: focus the composer
        return;
      }
    }
    renderAll();
  }

  function onHistory(frame: HistoryFrame): void {
    if (!state.room(frame.room)) return;
    state.applyHistory(frame.room, frame.messages, frame.more);
    if (frame.room === state.active) renderMessages();
  }

  function onMessage(frame: MessageFrame): void {
    if (!state.room(frame.room)) return;
    const { id, user, html, ts } = frame;
    const message = { id, user, html, ts };
    if (!state.addMessage(frame.room, message)) return;
    if (frame.room === state.active) {
      if (user !== state.user) title.messageInShownRoom();
      const view = state.view(frame.room);
      // The usual case, the newest message: append its node only (no pass over the list).
      if (view.messages.at(-1) === message) messages.append(frame.room, view, message, state.pendingIn(frame.room), state.user);
      else renderMessages();
    } else if (user !== state.user) {
      state.view(frame.room).unread += 1;
      renderRooms();
    }
  }

  function onError(frame: ErrorFrame): void {
    if (frame.clientId !== undefined && state.fail(frame.clientId, `Not sent: ${frame.message}`)) {
      renderMessages();
      return;
    }
    // Other errors are not tied to a request (the protocol has no request ids for
    // join / create / invite / remove), so show them and reset what might be waiting.
    creating = null;
    accepting = null;
    declining.clear();
    state.cancelLoadingOlder();
    showError(frame.message);
    renderMessages();
  }

  // ---- actions -----------------------------------------------------------------

  function sendFrame(frame: ClientFrame): boolean {
    if (socket?.send(frame)) return true;
    showConnectionError('Not connected right now. Try again once the connection is back.');
    return false;
  }

  function sendText(room: string, text: string, clientId: string = crypto.randomUUID()): boolean {
    if (socket?.state !== 'connected') return false;
    // Reading older messages at the cap: bring the newest back so the sent one shows up.
    if (state.view(room).newer) loadLatest(room);
    state.addPending(room, text, clientId);
    if (!sendFrame({ type: 'send', room, text, clientId })) {
      state.removePending(clientId);
      return false;
    }
    renderMessages('bottom');
    return true;
  }

  function selectRoom(room: string, focusComposer: boolean): void {
    if (!state.room(room)) return;
    state.active = room;
    state.view(room).unread = 0;
    if (!state.joined.has(room)) {
      // Remember the room even if the socket is down: the next connect re-joins it.
      state.joined.add(room);
      socket?.send({ type: 'join', room });
    }
    if (state.room(room)?.private) socket?.send({ type: 'members', room });
    renderAll();
    if (focusComposer) composer.focus();
  }

  function loadOlder(): void {
    const room = state.active;
    if (!room) return;
    const view = state.view(room);
    const oldest = view.messages[0];
    if (!oldest || view.loadingOlder) return;
    if (!sendFrame({ type: 'history', room, before: oldest.id })) return;
    view.loadingOlder = true;
    renderMessages();
  }

  function loadNewer(): void {
    if (state.active) loadLatest(state.active);
  }

  /** The latest page again (`before` past any id): it replaces or merges, and clears `newer`. */
  function loadLatest(room: string): void {
    sendFrame({ type: 'history', room, before: Number.MAX_SAFE_INTEGER });
  }

  // ---- rendering ---------------------------------------------------------------

  function renderRooms(): void {
    title.update(state.active, state.rooms.reduce((sum, room) => sum + (room.name === state.active ? 0 : state.view(room.name).unread), 0));
    roomList.render(
      state.rooms.map((room) => ({ room, unread: state.view(room.name).unread, owned: room.owner === state.user })),
      state.active,
    );
  }

  function renderMessages(scroll: 'keep' | 'bottom' = 'keep'): void {
    const room = state.active;
    messages.show(room, room ? state.view(room) : null, room ? state.pendingIn(room) : [], state.user, scroll);
  }

  function renderPeople(): void {
    const room = state.active ? state.room(state.active) : undefined;
    memberList.render(room, state.user, room ? state.members(room.name) : undefined, room ? state.online(room.name) : new Set());
  }

  function renderComposer(): void {
    composer.update(state.active, socket?.state === 'connected');
  }

  function renderAll(): void {
    const room = state.active ? state.room(state.active) : undefined;
    roomTitle.textContent = room ? room.name : 'No room';
    roomsPanel.update(room, room ? state.isOwner(room.name) : false);
    renderPeople();
    roomEvents.render(room ? state.events(room.name) : []);
    invitations.render(state.invitations);
    renderRooms();
    renderMessages();
    renderComposer();
  }

  return {
    start(username) {
      state = new ChatState(username);
      currentUser.textContent = username;
      screen.hidden = false;
      renderAll();
      socket = new ChatSocket({ url: socketUrl(), checkSession });
      socket.on('state', onState);
      socket.on('open', () => {
        rejoinPending = true;
      });
      socket.on('frame', onFrame);
      socket.on('closed', ({ code, reason }) => {
        // server/ws/frames.ts: WS_ABUSE_THRESHOLD refused frames in a row end the socket (1008).
        if (code === CLOSE.policyViolation && reason === 'rate limit exceeded') {
          showError('You were disconnected for sending too fast. Reconnecting; wait a moment before sending again.');
        }
      });
      socket.on('ended', () => options.onSessionEnded('Your session has ended. Please log in again.'));
      socket.on('refused', () => indicator.refused(true));
      socket.start();
    },
    stop() {
      socket?.stop();
      socket = null;
      indicator.refused(false);
      state = new ChatState('');
      rejoinPending = false;
      creating = null;
      accepting = null;
      declining.clear();
      account.closeDialog();
      roomList.clear();
      invitations.clear();
      memberList.clear();
      roomEvents.clear();
      messages.clear();
      roomsPanel.clear();
      composer.clear();
      currentUser.textContent = '';
      roomTitle.textContent = '';
      title.clear();
      screen.hidden = true;
    },
  };
}
