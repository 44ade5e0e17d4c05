// The chat screen: the DOM side of the chat. It builds the views, implements the ChatView the
// controller (../chat-controller.ts: frames and actions, no DOM) asks to render, and wires the
// socket to the controller. start() opens the socket; stop() drops everything (ASVS 14.3.1).
import { CLOSE } from '../../shared/protocol.ts';
import { me } from '../api.ts';
import { ChatController, type ChatView } from '../chat-controller.ts';
import { ChatSocket } from '../socket.ts';
import type { SessionCheck } from '../socket.ts';
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

  let socket: ChatSocket | null = null;

  const title = createTabTitle();
  const indicator = createConnectionIndicator(() => socket?.reconnectNow());
  const roomList = createRoomList((room) => chat.selectRoom(room, true));
  const messages = createMessageList({
    loadOlder: () => chat.loadOlder(),
    loadNewer: () => chat.loadNewer(),
    retry: (clientId) => chat.retry(clientId),
    discard: (clientId) => chat.discard(clientId),
  });
  const composer = createComposer((text) => (chat.state.active ? chat.sendText(chat.state.active, text) : false));
  const roomsPanel = createRoomsPanel({
    create: (room) => chat.create(room),
    invite: (user) => chat.invite(user),
  });
  const invitations = createInvitationList({
    accept: (room) => chat.accept(room),
    decline: (room) => chat.decline(room),
  });
  const memberList = createMemberList({
    remove: (user) => chat.remove(user),
    leave: () => chat.leave(),
  });
  const roomEvents = createRoomEvents();
  const account = createAccount({
    currentUser: () => chat.state.user,
    onLoggedOut: () => options.onLoggedOut(),
    onSessionEnded: (message) => options.onSessionEnded(message),
  });

  /** No socket (signed out): nothing is sent. */
  const offline = { send: () => false, connected: false };
  const view = createView();
  // Replaced on every start(): a session's chat never outlives it.
  let chat = new ChatController('', view, offline);

  /** The view the controller drives: each render reads the controller's current state. */
  function createView(): ChatView {
    const renderRooms = () => {
      const { state } = chat;
      title.update(
        state.active,
        state.rooms.reduce((sum, room) => sum + (room.name === state.active ? 0 : state.view(room.name).unread), 0),
      );
      roomList.render(
        state.rooms.map((room) => ({ room, unread: state.view(room.name).unread, owned: room.owner === state.user })),
        state.active,
      );
    };
    const renderMessages = (scroll: 'keep' | 'bottom' = 'keep') => {
      const { state } = chat;
      const room = state.active;
      messages.show(room, room ? state.view(room) : null, room ? state.pendingIn(room) : [], state.user, scroll);
    };
    const renderPeople = () => {
      const { state } = chat;
      const room = state.active ? state.room(state.active) : undefined;
      memberList.render(room, state.user, room ? state.members(room.name) : undefined, room ? state.online(room.name) : new Set());
    };
    const renderRoomEvents = () => {
      const room = chat.state.active;
      roomEvents.render(room ? chat.state.events(room) : []);
    };
    const renderComposer = () => composer.update(chat.state.active, socket?.state === 'connected');
    return {
      renderRooms,
      renderMessages,
      appendMessage: (room, message) => messages.append(room, chat.state.view(room), message, chat.state.pendingIn(room), chat.state.user),
      renderPeople,
      renderInvitations: () => invitations.render(chat.state.invitations),
      renderRoomEvents,
      renderComposer,
      renderAll: () => {
        const { state } = chat;
        const room = state.active ? state.room(state.active) : undefined;
        roomTitle.textContent = room ? room.name : 'No room';
        roomsPanel.update(room, room ? state.isOwner(room.name) : false);
        renderPeople();
        renderRoomEvents();
        invitations.render(state.invitations);
        renderRooms();
        renderMessages();
        renderComposer();
      },
      showUser: (user) => (currentUser.textContent = user),
      roomCreated: () => roomsPanel.created(),
      focusComposer: () => composer.focus(),
      messageInShownRoom: () => title.messageInShownRoom(),
      announce,
      showError,
      showConnectionError,
      expectConfirmation,
      confirmNext,
      describeEvent,
    };
  }

  return {
    start(username) {
      const live = new ChatSocket({ url: socketUrl(), checkSession });
      socket = live;
      chat = new ChatController(username, view, {
        send: (frame) => live.send(frame),
        get connected() {
          return live.state === 'connected';
        },
      });
      currentUser.textContent = username;
      screen.hidden = false;
      view.renderAll();
      live.on('state', (connection) => {
        indicator.set(connection);
        chat.connectionState(connection);
      });
      live.on('open', () => chat.connected());
      live.on('frame', (frame) => chat.frame(frame));
      live.on('closed', ({ code, reason }) => {
        // server/ws/frames.ts: WS_ABUSE_THRESHOLD refused frames in a row end the socket (1008).
        if (code === CLOSE.policyViolation && reason === 'rate limit exceeded') {
          showError('You were disconnected for sending too fast. Reconnecting; wait a moment before sending again.');
        }
      });
      live.on('ended', () => options.onSessionEnded('Your session has ended. Please log in again.'));
      live.on('refused', () => indicator.refused(true));
      live.start();
    },
    stop() {
      socket?.stop();
      socket = null;
      indicator.refused(false);
      chat = new ChatController('', view, offline);
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
