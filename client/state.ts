// In-memory chat state for one signed-in session: rooms, messages per room and the
// messages still waiting for the server's ack. Plain data, no DOM. Nothing here is
// ever written to localStorage/sessionStorage, and the whole object is dropped when
// the session ends (ASVS 14.3.1 / 14.3.3).
import type { ChatMessage, Invitation, MembersFrame, RoomEventFrame, RoomInfo } from '../shared/protocol.ts';

/** Join/leave/invite lines kept per room (not stored on the server: this tab's view only). */
export const MAX_ROOM_EVENTS = 20;

/**
 * At most this many messages per room in memory, and so in the DOM. A tab left open in a
 * busy room would otherwise grow without bound and slow down with every message. Past the
 * cap the oldest are dropped (still on the server: "Load older messages" brings them back).
 */
export const MAX_ROOM_MESSAGES = 500;
/**
 * Live messages past the cap drop this many of the oldest at once, so the front of the list
 * changes once per TRIM_BATCH messages rather than on every one (each change there moves
 * every message below it).
 */
export const TRIM_BATCH = 50;

export type RoomView = {
  /** Oldest first, de-duplicated by id. */
  messages: ChatMessage[];
  /** The first history page has arrived. */
  loaded: boolean;
  /** The server has older messages than the oldest one we hold. */
  more: boolean;
  /**
   * Loading older messages at the cap dropped the newest ones: live messages are not held
   * (they would leave a gap) until the latest page is loaded again ("Show newest messages").
   */
  newer: boolean;
  loadingOlder: boolean;
  unread: number;
};

export type PendingStatus = 'sending' | 'sent' | 'failed';

/** A message this tab sent, shown until the server's broadcast copy replaces it. */
export type PendingMessage = {
  clientId: string;
  room: string;
  text: string;
  status: PendingStatus;
  /** The stored message id, once acked. */
  id: number | null;
  /** Why it failed, as a sentence for the user. */
  problem: string;
};

export class ChatState {
  user: string;
  rooms: RoomInfo[] = [];
  active: string | null = null;
  /** Rooms joined on the current socket (they keep streaming until the room is left or lost). */
  readonly joined = new Set<string>();
  /** Pending invitations: who invited us to which room. Not our rooms until accepted. */
  invitations: Invitation[] = [];
  /** Per room: who is online (a socket joined to it), from `presence` / `presence_change` / `presence_delta`. */
  readonly #online = new Map<string, Set<string>>();
  /** Per room: the last member list the server sent (`members`). */
  readonly #members = new Map<string, MembersFrame>();
  readonly #events = new Map<string, RoomEventFrame[]>();
  readonly #views = new Map<string, RoomView>();
  readonly #pending = new Map<string, PendingMessage>();

  constructor(user: string) {
    this.user = user;
  }

  room(name: string): RoomInfo | undefined {
    return this.rooms.find((room) => room.name === name);
  }

  isOwner(name: string): boolean {
    return this.room(name)?.owner === this.user;
  }

  view(name: string): RoomView {
    let view = this.#views.get(name);
    if (!view) {
      view = { messages: [], loaded: false, more: false, newer: false, loadingOlder: false, unread: 0 };
      this.#views.set(name, view);
    }
    return view;
  }

  /** Replace the room list; returns the names of rooms we lost access to. */
  setRooms(user: string, rooms: RoomInfo[]): string[] {
    this.user = user;
    const names = new Set(rooms.map((room) => room.name));
    const removed = this.rooms.map((room) => room.name).filter((name) => !names.has(name));
    this.rooms = rooms;
    for (const name of removed) this.#forget(name);
    // Joined rooms that vanished while we were away (the list is new after a reconnect).
    for (const name of [...this.joined]) if (!names.has(name)) this.#forget(name);
    if (this.active !== null && !names.has(this.active)) this.active = null;
    return removed;
  }

  /** One room added (created, or an invitation accepted), or its details changed. */
  addRoom(room: RoomInfo): void {
    const at = this.rooms.findIndex((known) => known.name === room.name);
    if (at >= 0) this.rooms[at] = room;
    else this.rooms = [...this.rooms, room];
  }

  /** One room lost (left, removed). True if it was the active one (now none). */
  removeRoom(name: string): boolean {
    this.rooms = this.rooms.filter((room) => room.name !== name);
    this.#forget(name);
    if (this.active !== name) return false;
    this.active = null;
    return true;
  }

  setInvitations(invitations: Invitation[]): void {
    this.invitations = [...invitations];
  }

  addInvitation(invitation: Invitation): void {
    this.invitations = [...this.invitations.filter((known) => known.room !== invitation.room), invitation];
  }

  removeInvitation(room: string): void {
    this.invitations = this.invitations.filter((known) => known.room !== room);
  }

  setOnline(room: string, users: string[]): void {
    this.#online.set(room, new Set(users));
  }

  setPresence(room: string, user: string, online: boolean): void {
    const users = this.#online.get(room) ?? new Set<string>();
    if (online) users.add(user);
    else users.delete(user);
    this.#online.set(room, users);
  }

  online(room: string): ReadonlySet<string> {
    return this.#online.get(room) ?? new Set();
  }

  setMembers(frame: MembersFrame): void {
    this.#members.set(frame.room, frame);
  }

  members(room: string): MembersFrame | undefined {
    return this.#members.get(room);
  }

  addEvent(frame: RoomEventFrame): void {
    const events = this.#events.get(frame.room) ?? [];
    events.push(frame);
    if (events.length > MAX_ROOM_EVENTS) events.splice(0, events.length - MAX_ROOM_EVENTS);
    this.#events.set(frame.room, events);
  }

  events(room: string): readonly RoomEventFrame[] {
    return this.#events.get(room) ?? [];
  }

  /**
   * Merge a history page. The same frame answers both a join (the latest page) and a
   * "load older" request, so decide by content: an older page is prepended; an
   * overlapping page is merged; a page with a possible gap (after a long disconnect)
   * replaces what we had — anything older can be loaded again. Then the cap: an older page
   * pushes out the newest messages, any other page (it ends at the room's newest) the oldest.
   */
  applyHistory(name: string, page: ChatMessage[], more: boolean): void {
    const view = this.view(name);
    view.loaded = true;
    view.loadingOlder = false;
    const first = page[0];
    const last = page.at(-1);
    const oldest = view.messages[0];
    const newest = view.messages.at(-1);
    let older = false;
    if (!first || !last) {
      view.more = more;
    } else if (!oldest || !newest) {
      view.messages = [...page];
      view.more = more;
    } else if (last.id < oldest.id) {
      view.messages = [...page, ...view.messages];
      view.more = more;
      older = true;
    } else if (first.id <= newest.id) {
      const byId = new Map(view.messages.map((message) => [message.id, message]));
      for (const message of page) byId.set(message.id, message);
      view.messages = [...byId.values()].sort((a, b) => a.id - b.id);
      if (first.id <= oldest.id) view.more = more;
    } else {
      view.messages = [...page];
      view.more = more;
    }
    const excess = view.messages.length - MAX_ROOM_MESSAGES;
    if (older) {
      if (excess > 0) {
        view.messages.length = MAX_ROOM_MESSAGES;
        view.newer = true;
      }
    } else {
      if (first) view.newer = false;
      if (excess > 0) {
        view.messages.splice(0, excess);
        view.more = true;
      }
    }
    this.#settlePending(name);
  }

  /** Add a live message; false if we already had it, or do not hold the newest messages now. */
  addMessage(name: string, message: ChatMessage): boolean {
    const view = this.view(name);
    if (view.newer) return false;
    const messages = view.messages;
    const last = messages.at(-1);
    if (!last || last.id < message.id) {
      messages.push(message); // the usual case: no scan of what we hold
    } else {
      if (messages.some((known) => known.id === message.id)) return false;
      const at = messages.findIndex((known) => known.id > message.id);
      if (at === 0 && view.more) return false; // older than what we hold: "Load older" has it
      messages.splice(at, 0, message);
    }
    if (messages.length > MAX_ROOM_MESSAGES) {
      messages.splice(0, messages.length - (MAX_ROOM_MESSAGES - TRIM_BATCH));
      view.more = true;
    }
    this.#settlePending(name);
    return true;
  }

  cancelLoadingOlder(): void {
    for (const view of this.#views.values()) view.loadingOlder = false;
  }

  // ---- pending (sent, not yet confirmed) messages ----------------------------

  addPending(room: string, text: string, clientId: string): PendingMessage {
    const pending: PendingMessage = { clientId, room, text, status: 'sending', id: null, problem: '' };
    this.#pending.set(clientId, pending);
    return pending;
  }

  pendingIn(room: string): PendingMessage[] {
    return [...this.#pending.values()].filter((pending) => pending.room === room);
  }

  getPending(clientId: string): PendingMessage | undefined {
    return this.#pending.get(clientId);
  }

  removePending(clientId: string): void {
    this.#pending.delete(clientId);
  }

  /** The server stored it: keep showing it until its broadcast copy arrives. */
  ack(clientId: string, id: number): PendingMessage | undefined {
    const pending = this.#pending.get(clientId);
    if (!pending) return undefined;
    pending.status = 'sent';
    pending.id = id;
    this.#settlePending(pending.room);
    return pending;
  }

  fail(clientId: string, problem: string): PendingMessage | undefined {
    const pending = this.#pending.get(clientId);
    if (!pending) return undefined;
    pending.status = 'failed';
    pending.problem = problem;
    return pending;
  }

  /** The socket dropped: anything not acked may or may not have been stored. */
  failUnconfirmed(problem: string): void {
    for (const pending of this.#pending.values()) {
      if (pending.status === 'sending') {
        pending.status = 'failed';
        pending.problem = problem;
      }
    }
  }

  /** Drop pending copies whose real message is now in the room's list (de-duplicate by id). */
  #settlePending(room: string): void {
    // Most calls find nothing to settle: skip the scan of the room's messages.
    if (![...this.#pending.values()].some((pending) => pending.room === room && pending.id !== null)) return;
    const ids = new Set(this.view(room).messages.map((message) => message.id));
    for (const [clientId, pending] of this.#pending) {
      if (pending.room === room && pending.id !== null && ids.has(pending.id)) this.#pending.delete(clientId);
    }
  }

  #forget(name: string): void {
    this.joined.delete(name);
    this.#views.delete(name);
    this.#online.delete(name);
    this.#members.delete(name);
    this.#events.delete(name);
    for (const [clientId, pending] of this.#pending) if (pending.room === name) this.#pending.delete(clientId);
  }
}
