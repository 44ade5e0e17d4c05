// The chat's logic, without the DOM: server frames and the user's actions come in; the state
// (state.ts) changes and the view is told what to show again. ui/chat-screen.ts implements the
// view with the DOM components; test/chat-controller.test.ts drives this with a recording view.
// Flow: the socket opens → the server sends `rooms` → we join the active room (and, after a
// reconnect, every room we had joined) → `history` + live `message` frames fill the log.
import { LOBBY } from '../shared/protocol.ts';
import type { ChatMessage, ClientFrame, ErrorFrame, HistoryFrame, MessageFrame, RoomEventFrame, RoomsFrame, ServerFrame } from '../shared/protocol.ts';
import type { ConnectionState } from './socket.ts';
import { ChatState } from './state.ts';

/** What the controller asks of the screen. Each render reads the controller's state. */
export type ChatView = {
  /** The room list and the tab title's unread count. */
  renderRooms(): void;
  renderMessages(scroll?: 'keep' | 'bottom'): void;
  /** The newest message of the shown room: one node appended, no pass over the list. */
  appendMessage(room: string, message: ChatMessage): void;
  renderPeople(): void;
  renderInvitations(): void;
  renderRoomEvents(): void;
  renderComposer(): void;
  /** Everything (another room is shown). */
  renderAll(): void;
  showUser(user: string): void;
  roomCreated(): void;
  focusComposer(): void;
  /** A message from someone else in the shown room (the title counts it while the tab is hidden). */
  messageInShownRoom(): void;
  announce(message: string): void;
  showError(message: string): void;
  showConnectionError(message: string): void;
  expectConfirmation(message: string): void;
  confirmNext(): void;
  describeEvent(frame: RoomEventFrame): string;
};

/** The socket as the controller uses it. */
export type ChatTransport = {
  send(frame: ClientFrame): boolean;
  readonly connected: boolean;
};

export class ChatController {
  readonly state: ChatState;
  readonly #view: ChatView;
  readonly #transport: ChatTransport;
  /** Set on every (re)connect: the next room list re-joins our rooms. */
  #rejoinPending = false;
  /** The room we asked to create, selected once it shows up in the room list. */
  #creating: string | null = null;
  /** The invitation we accepted, selected once its room shows up in the room list. */
  #accepting: string | null = null;
  /** Invitations we declined, announced once the server has removed them. */
  readonly #declining = new Set<string>();

  constructor(user: string, view: ChatView, transport: ChatTransport) {
    this.state = new ChatState(user);
    this.#view = view;
    this.#transport = transport;
  }

  // ---- the socket --------------------------------------------------------------

  /** A (re)connection is open; the server's `rooms` frame follows. */
  connected(): void {
    this.#rejoinPending = true;
  }

  connectionState(connection: ConnectionState): void {
    if (connection !== 'connected') {
      // Whatever was in flight on the old socket may or may not have been stored.
      this.state.failUnconfirmed('Connection lost before the server confirmed this message; it may still have arrived.');
      this.state.cancelLoadingOlder();
      this.#view.renderMessages();
    }
    this.#view.renderComposer();
  }

  frame(frame: ServerFrame): void {
    const { state } = this;
    const view = this.#view;
    switch (frame.type) {
      case 'rooms':
        return this.#rooms(frame);
      case 'history':
        return this.#history(frame);
      case 'message':
        return this.#message(frame);
      case 'ack':
        if (state.ack(frame.clientId, frame.id)) view.renderMessages();
        return;
      case 'error':
        return this.#error(frame);
      case 'invitations':
        state.setInvitations(frame.invitations);
        return view.renderInvitations();
      case 'invitation_added':
        state.addInvitation(frame.invitation);
        view.renderInvitations();
        return view.announce(`${frame.invitation.from} invited you to ${frame.invitation.room}.`);
      case 'invitation_removed':
        state.removeInvitation(frame.room);
        if (this.#declining.delete(frame.room)) view.announce(`Invitation to ${frame.room} declined.`);
        return view.renderInvitations();
      case 'room_added':
        state.addRoom(frame.room);
        return this.#roomsChanged(state.active, []);
      case 'room_removed': {
        const previous = state.active;
        const wasKnown = Boolean(state.room(frame.room));
        state.removeRoom(frame.room);
        return this.#roomsChanged(previous, wasKnown ? [frame.room] : []);
      }
      case 'members':
        state.setMembers(frame);
        if (frame.room === state.active) view.renderPeople();
        return;
      case 'presence':
        state.setOnline(frame.room, frame.online);
        if (frame.room === state.active) view.renderPeople();
        return;
      case 'presence_change':
        state.setPresence(frame.room, frame.user, frame.online);
        if (frame.room === state.active) view.renderPeople();
        return;
      case 'presence_delta':
        for (const user of frame.online) state.setPresence(frame.room, user, true);
        for (const user of frame.offline) state.setPresence(frame.room, user, false);
        if (frame.room === state.active) view.renderPeople();
        return;
      case 'room_event':
        return this.#roomEvent(frame);
    }
  }

  #roomEvent(frame: RoomEventFrame): void {
    const { state } = this;
    if (!state.room(frame.room)) return;
    // The server's answer to this user's own invite or removal: its waiting confirmation says it.
    const ownAnswer = frame.by === state.user && (frame.event === 'invited' || frame.event === 'removed' || frame.event === 'uninvited');
    if (ownAnswer) this.#view.confirmNext();
    state.addEvent(frame);
    if (frame.room !== state.active) return;
    this.#view.renderRoomEvents();
    if (!ownAnswer) this.#view.announce(this.#view.describeEvent(frame));
    // Who is in the room changed: ask for the list again (the server authorizes it again).
    if (state.room(frame.room)?.private) this.send({ type: 'members', room: frame.room });
  }

  #rooms(frame: RoomsFrame): void {
    const previous = this.state.active;
    const removed = this.state.setRooms(frame.user, frame.rooms);
    this.#view.showUser(frame.user);
    this.#roomsChanged(previous, removed);
  }

  /** The room list changed (whole, or one room added or removed). */
  #roomsChanged(previous: string | null, removed: string[]): void {
    const { state } = this;
    if (previous && removed.includes(previous)) this.#view.announce(`You no longer have access to ${previous}.`);

    if (this.#rejoinPending) {
      this.#rejoinPending = false;
      for (const room of state.joined) this.send({ type: 'join', room });
      // Who is in the active room may have changed while we were away.
      if (state.active && state.room(state.active)?.private) this.send({ type: 'members', room: state.active });
    }
    if (this.#creating && state.room(this.#creating)) {
      const room = this.#creating;
      this.#creating = null;
      this.#view.roomCreated();
      this.#view.announce(`Room ${room} created.`);
      return this.selectRoom(room, true);
    }
    if (this.#accepting && state.room(this.#accepting)) {
      const room = this.#accepting;
      this.#accepting = null;
      this.#view.announce(`You joined ${room}.`);
      return this.selectRoom(room, true);
    }
    if (state.active === null) {
      const fallback = state.room(LOBBY) ? LOBBY : state.rooms[0]?.name;
      if (fallback) return this.selectRoom(fallback, previous === null); // first load: focus the composer
    }
    this.#view.renderAll();
  }

  #history(frame: HistoryFrame): void {
    if (!this.state.room(frame.room)) return;
    this.state.applyHistory(frame.room, frame.messages, frame.more);
    if (frame.room === this.state.active) this.#view.renderMessages();
  }

  #message(frame: MessageFrame): void {
    const { state } = this;
    if (!state.room(frame.room)) return;
    const { id, user, html, ts } = frame;
    const message = { id, user, html, ts };
    if (!state.addMessage(frame.room, message)) return;
    if (frame.room === state.active) {
      if (user !== state.user) this.#view.messageInShownRoom();
      // The usual case, the newest message: append its node only (no pass over the list).
      if (state.view(frame.room).messages.at(-1) === message) this.#view.appendMessage(frame.room, message);
      else this.#view.renderMessages();
    } else if (user !== state.user) {
      state.view(frame.room).unread += 1;
      this.#view.renderRooms();
    }
  }

  #error(frame: ErrorFrame): void {
    if (frame.clientId !== undefined && this.state.fail(frame.clientId, `Not sent: ${frame.message}`)) {
      this.#view.renderMessages();
      return;
    }
    // Other errors are not tied to a request (the protocol has no request ids for join /
    // create / invite / remove), so show them and reset what might be waiting.
    this.#creating = null;
    this.#accepting = null;
    this.#declining.clear();
    this.state.cancelLoadingOlder();
    this.#view.showError(frame.message);
    this.#view.renderMessages();
  }

  // ---- the user's actions ------------------------------------------------------

  send(frame: ClientFrame): boolean {
    if (this.#transport.send(frame)) return true;
    this.#view.showConnectionError('Not connected right now. Try again once the connection is back.');
    return false;
  }

  sendText(room: string, text: string, clientId: string = crypto.randomUUID()): boolean {
    if (!this.#transport.connected) return false;
    // Reading older messages at the cap: bring the newest back so the sent one shows up.
    if (this.state.view(room).newer) this.#loadLatest(room);
    this.state.addPending(room, text, clientId);
    if (!this.send({ type: 'send', room, text, clientId })) {
      this.state.removePending(clientId);
      return false;
    }
    this.#view.renderMessages('bottom');
    return true;
  }

  /** A message that failed, sent again with the same clientId: if the first try was stored after all, it is stored once. */
  retry(clientId: string): void {
    const failed = this.state.getPending(clientId);
    if (!failed) return;
    if (!this.#transport.connected) return this.#view.showConnectionError('Not connected right now. Retry once the connection is back.');
    this.state.removePending(clientId);
    this.sendText(failed.room, failed.text, clientId);
  }

  discard(clientId: string): void {
    this.state.removePending(clientId);
    this.#view.renderMessages();
  }

  selectRoom(room: string, focusComposer: boolean): void {
    const { state } = this;
    if (!state.room(room)) return;
    state.active = room;
    state.view(room).unread = 0;
    if (!state.joined.has(room)) {
      // Remember the room even if the socket is down: the next connect re-joins it.
      state.joined.add(room);
      this.#transport.send({ type: 'join', room });
    }
    if (state.room(room)?.private) this.#transport.send({ type: 'members', room });
    this.#view.renderAll();
    if (focusComposer) this.#view.focusComposer();
  }

  loadOlder(): void {
    const room = this.state.active;
    if (!room) return;
    const view = this.state.view(room);
    const oldest = view.messages[0];
    if (!oldest || view.loadingOlder) return;
    if (!this.send({ type: 'history', room, before: oldest.id })) return;
    view.loadingOlder = true;
    this.#view.renderMessages();
  }

  loadNewer(): void {
    if (this.state.active) this.#loadLatest(this.state.active);
  }

  /** The latest page again (`before` past any id): it replaces or merges, and clears `newer`. */
  #loadLatest(room: string): void {
    this.send({ type: 'history', room, before: Number.MAX_SAFE_INTEGER });
  }

  create(room: string): boolean {
    this.#creating = room;
    return this.send({ type: 'create', room });
  }

  /** Confirmed when the server answers with the "invited" line, or refused by an error. */
  invite(user: string): boolean {
    const room = this.state.active;
    if (!room || !this.send({ type: 'invite', room, user })) return false;
    this.#view.expectConfirmation(`Invitation for ${user} sent.`); // shown when the server answers, not before
    return true;
  }

  accept(room: string): void {
    if (this.send({ type: 'accept', room })) this.#accepting = room;
  }

  /** Confirmed when the server takes the invitation away (invitation_removed). */
  decline(room: string): void {
    if (this.send({ type: 'decline', room })) this.#declining.add(room);
  }

  /** Confirmed by the "removed" / "uninvited" line in the room, which also refreshes the list. */
  remove(user: string): void {
    const room = this.state.active;
    if (room && this.send({ type: 'remove', room, user })) this.#view.expectConfirmation(`${user} was removed from ${room}.`);
  }

  leave(): void {
    const room = this.state.active;
    if (room && this.state.room(room)?.private) this.send({ type: 'leave', room });
  }
}
