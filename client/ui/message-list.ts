// The message log of the active room (role="log", aria-live="polite"), the
// "Load older messages" button, the empty-room hint and the "new messages" marker: a
// reader scrolled up is not pulled down by a new message; a button over the bottom of the
// log counts what arrived below and jumps to the newest.
//
// Message nodes are created once per message id and reused, so an update only adds
// or removes nodes: screen readers hear just the new messages, and DOMPurify runs
// once per message rather than on every render. A live message takes the append() path:
// one new node, plus removing whatever the room's cap (state.ts) pushed out — no pass over
// the whole list, so the cost of a message does not grow with the room's history.
//
// Each body and username is its own bidi isolate (dir="auto", unicode-bidi: isolate in
// styles.css): a U+202E (RIGHT-TO-LEFT OVERRIDE) or an unclosed isolate in one message
// cannot reorder anything outside it (Unicode UAX #9; HTML's dir=auto).
import type { ChatMessage } from '../../shared/protocol.ts';
import { renderMessageHtml } from '../render.ts';
import type { PendingMessage, PendingStatus, RoomView } from '../state.ts';
import { byId, el } from './dom.ts';

export type MessageListActions = {
  loadOlder(): void;
  /** After loading older messages at the cap: load the latest page again. */
  loadNewer(): void;
  retry(clientId: string): void;
  discard(clientId: string): void;
};

export type MessageList = {
  /** Show `room`'s messages. `scroll: 'bottom'` jumps to the newest (after the user sends). */
  show(room: string | null, view: RoomView | null, pending: PendingMessage[], me: string, scroll?: 'keep' | 'bottom'): void;
  /**
   * A live message that is now the newest of `view` (the room shown): append its node only,
   * drop what the cap removed from the front and any pending copy it settled.
   */
  append(room: string, view: RoomView, message: ChatMessage, pending: PendingMessage[], me: string): void;
  clear(): void;
};

/** Within this many pixels of the bottom counts as "reading the newest messages". */
const STICKY_BOTTOM_PX = 48;

export function createMessageList(actions: MessageListActions): MessageList {
  const log = byId('messages', HTMLElement);
  const empty = byId('messages-empty', HTMLElement);
  const loadOlder = byId('load-older', HTMLButtonElement);
  const loadNewer = byId('load-newer', HTMLButtonElement);
  /** room → message id → node. Dropped on clear() (session end). */
  let nodes = new Map<string, Map<number, HTMLElement>>();
  /** clientId → node of a message still waiting for the server, rebuilt when its status changes. */
  let pendingNodes = new Map<string, { status: PendingStatus; node: HTMLElement }>();
  let shownRoom: string | null = null;
  /** A scroll to the newest message is due at the next frame (see stickToBottom). */
  let stickScheduled = false;
  /** Messages from others that arrived below while the reader was scrolled up. */
  let unseen = 0;
  const jump = byId('jump-newest', HTMLButtonElement);

  loadOlder.addEventListener('click', () => actions.loadOlder());
  loadNewer.addEventListener('click', () => actions.loadNewer());
  jump.addEventListener('click', () => {
    log.scrollTop = log.scrollHeight;
    setUnseen(0);
    log.focus(); // the button goes away: keep keyboard focus on the messages it led to
  });
  // Reaching the bottom by scrolling clears the marker too.
  log.addEventListener(
    'scroll',
    () => {
      if (unseen > 0 && atBottom()) setUnseen(0);
    },
    { passive: true },
  );

  function atBottom(): boolean {
    return log.scrollHeight - log.scrollTop - log.clientHeight <= STICKY_BOTTOM_PX;
  }

  function setUnseen(count: number): void {
    unseen = count;
    jump.hidden = count === 0;
    if (count > 0) {
      jump.replaceChildren(
        el('span', { text: count === 1 ? '1 new message' : `${count > 99 ? '99+' : count} new messages` }),
        el('span', { text: ' ↓', attrs: { 'aria-hidden': 'true' } }),
      );
    }
  }
  log.addEventListener('click', (event) => {
    const button = event.target instanceof Element ? event.target.closest('button[data-action]') : null;
    const clientId = button?.closest('[data-client-id]')?.getAttribute('data-client-id');
    if (!button || !clientId) return;
    if (button.getAttribute('data-action') === 'retry') actions.retry(clientId);
    else actions.discard(clientId);
  });

  function messageNode(room: string, message: ChatMessage, me: string): HTMLElement {
    let roomNodes = nodes.get(room);
    if (!roomNodes) nodes.set(room, (roomNodes = new Map()));
    let node = roomNodes.get(message.id);
    if (!node) {
      const body = el('div', { className: 'message-body', attrs: { dir: 'auto' } });
      renderMessageHtml(body, message.html); // the one HTML sink, via the Trusted Types policy
      node = el(
        'article',
        { className: message.user === me ? 'message own' : 'message', attrs: { 'data-id': String(message.id) } },
        el(
          'header',
          { className: 'message-meta' },
          el('bdi', { className: 'message-user', text: message.user }), // ASVS 3.2.2: text, never HTML
          timeElement(message.ts),
        ),
        body,
      );
      roomNodes.set(message.id, node);
    }
    return node;
  }

  function pendingNode(pending: PendingMessage, me: string): HTMLElement {
    const cached = pendingNodes.get(pending.clientId);
    if (cached && cached.status === pending.status) return cached.node;
    const node = createPendingNode(pending, me);
    pendingNodes.set(pending.clientId, { status: pending.status, node });
    return node;
  }

  /** Forget nodes of `room` that are no longer shown (replaced history, settled pending messages). */
  function prune(room: string): void {
    for (const [id, node] of nodes.get(room) ?? []) if (!node.isConnected) nodes.get(room)?.delete(id);
    for (const [clientId, { node }] of pendingNodes) if (!node.isConnected) pendingNodes.delete(clientId);
  }

  /** Follow the newest message once per frame, however many arrived in it (one layout, not one per message). */
  function stickToBottom(): void {
    if (stickScheduled) return;
    stickScheduled = true;
    requestAnimationFrame(() => {
      stickScheduled = false;
      log.scrollTop = log.scrollHeight;
    });
  }

  function updateControls(room: string | null, view: RoomView | null, shown: number): void {
    const loaded = view?.loaded ?? false;
    empty.hidden = shown > 0 || room === null;
    empty.textContent = loaded ? 'No messages yet. Say hello!' : 'Loading messages…';
    loadOlder.hidden = !(view && view.more);
    loadOlder.disabled = view?.loadingOlder ?? false;
    loadOlder.textContent = view?.loadingOlder ? 'Loading older messages…' : 'Load older messages';
    loadNewer.hidden = !(view && view.newer);
  }

  return {
    show(room, view, pending, me, scroll = 'keep') {
      const roomChanged = room !== shownRoom;
      shownRoom = room;
      const wasAtBottom = atBottom();
      const anchor = log.firstElementChild;
      const anchorTop = anchor?.getBoundingClientRect().top ?? 0;

      const wanted: HTMLElement[] = [];
      if (room && view) {
        for (const message of view.messages) wanted.push(messageNode(room, message, me));
        for (const item of pending) wanted.push(pendingNode(item, me));
      }
      // While a whole room is swapped in, ask assistive tech not to read it all out.
      if (roomChanged) {
        log.setAttribute('aria-busy', 'true');
        requestAnimationFrame(() => log.removeAttribute('aria-busy'));
      }
      reconcile(log, wanted);
      if (room) prune(room);

      if (roomChanged || scroll === 'bottom' || wasAtBottom) {
        log.scrollTop = log.scrollHeight;
        setUnseen(0);
      } else if (anchor?.isConnected) {
        // Older messages were added above: keep what the reader was looking at in place.
        log.scrollTop += anchor.getBoundingClientRect().top - anchorTop;
      }

      updateControls(room, view, wanted.length);
    },
    append(room, view, message, pending, me) {
      if (room !== shownRoom) return this.show(room, view, pending, me);
      // Read before writing, and not again while a scroll is due: no forced layout per message.
      const wasAtBottom = stickScheduled || atBottom();
      // Pending copies this message settled (our own, broadcast back) leave.
      const waiting = new Set(pending.map((item) => item.clientId));
      for (const [clientId, { node }] of pendingNodes) {
        if (node.isConnected && !waiting.has(clientId)) {
          node.remove();
          pendingNodes.delete(clientId);
        }
      }
      // Pending messages stay last, after every stored one.
      const firstPending = pending.length > 0 ? log.querySelector(':scope > [data-client-id]') : null;
      log.insertBefore(messageNode(room, message, me), firstPending);
      // The cap dropped the oldest messages from the state: drop their nodes from the front.
      const oldest = view.messages[0]?.id ?? message.id;
      const dropped: HTMLElement[] = [];
      for (
        let node = log.firstElementChild;
        node instanceof HTMLElement && node.dataset['id'] !== undefined && Number(node.dataset['id']) < oldest;
        node = node.nextElementSibling
      ) {
        dropped.push(node);
      }
      if (dropped.length > 0) {
        // Keep what a reader scrolled up is looking at in place while the nodes above it go.
        const kept = wasAtBottom ? null : dropped.at(-1)!.nextElementSibling;
        const keptTop = kept?.getBoundingClientRect().top ?? 0;
        const roomNodes = nodes.get(room);
        for (const node of dropped) {
          roomNodes?.delete(Number(node.dataset['id']));
          node.remove();
        }
        if (kept?.isConnected) log.scrollTop += kept.getBoundingClientRect().top - keptTop;
      }
      if (wasAtBottom) stickToBottom();
      else if (message.user !== me) setUnseen(unseen + 1);
      updateControls(room, view, log.childElementCount);
    },
    clear() {
      loadNewer.hidden = true;
      nodes = new Map();
      pendingNodes = new Map();
      shownRoom = null;
      setUnseen(0);
      log.replaceChildren();
      empty.hidden = true;
      loadOlder.hidden = true;
    },
  };
}

/** Make `parent`'s children exactly `wanted`, in order, touching only what differs. */
function reconcile(parent: HTMLElement, wanted: HTMLElement[]): void {
  const keep = new Set(wanted);
  for (const child of [...parent.children]) if (!keep.has(child as HTMLElement)) child.remove();
  wanted.forEach((node, index) => {
    if (parent.children[index] !== node) parent.insertBefore(node, parent.children[index] ?? null);
  });
}

/** A message we sent that the server has not broadcast back yet: plain text, never parsed as HTML. */
function createPendingNode(pending: PendingMessage, me: string): HTMLElement {
  const status = pending.status === 'sending' ? 'Sending…' : pending.status === 'sent' ? 'Sent' : pending.problem;
  const node = el(
    'article',
    { className: `message own pending ${pending.status}`, attrs: { 'data-client-id': pending.clientId } },
    el('header', { className: 'message-meta' }, el('bdi', { className: 'message-user', text: me }), el('span', { className: 'message-status', text: status })),
    el('div', { className: 'message-body pending-text', text: pending.text, attrs: { dir: 'auto' } }),
  );
  if (pending.status === 'failed') {
    node.append(
      el(
        'div',
        { className: 'message-actions' },
        el('button', { className: 'quiet', text: 'Retry', attrs: { type: 'button', 'data-action': 'retry' } }),
        el('button', { className: 'quiet', text: 'Discard', attrs: { type: 'button', 'data-action': 'discard' } }),
      ),
    );
  }
  return node;
}

const timeFormat = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' });
const dateTimeFormat = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });

/** `ts` is milliseconds since the epoch. Today's messages show the time, older ones the date too. */
function timeElement(ts: number): HTMLElement {
  const date = new Date(ts);
  if (Number.isNaN(date.getTime())) return el('span');
  const today = new Date().toDateString() === date.toDateString();
  return el('time', {
    className: 'message-time',
    text: today ? timeFormat.format(date) : dateTimeFormat.format(date),
    attrs: { datetime: date.toISOString(), title: dateTimeFormat.format(date) },
  });
}
