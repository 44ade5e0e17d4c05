// The room list in the sidebar: the lobby first, then the user's other rooms.
// Each entry is a real <button data-room="name">; the active one has aria-current.
import { LOBBY } from '../../shared/protocol.ts';
import type { RoomInfo } from '../../shared/protocol.ts';
import { byId, el } from './dom.ts';

export type RoomEntry = { room: RoomInfo; unread: number; owned: boolean };

export type RoomList = {
  render(entries: RoomEntry[], active: string | null): void;
  clear(): void;
};

export function createRoomList(onSelect: (room: string) => void): RoomList {
  const list = byId('room-list', HTMLUListElement);

  // One listener for every entry (event delegation), so re-rendering adds none.
  list.addEventListener('click', (event) => {
    const button = event.target instanceof Element ? event.target.closest('button[data-room]') : null;
    const room = button?.getAttribute('data-room');
    if (room) onSelect(room);
  });

  return {
    render(entries, active) {
      const hadFocus = list.contains(document.activeElement) ? document.activeElement?.getAttribute('data-room') : null;
      const sorted = [...entries].sort((a, b) => Number(b.room.name === LOBBY) - Number(a.room.name === LOBBY) || a.room.name.localeCompare(b.room.name));
      list.replaceChildren(...sorted.map((entry) => renderEntry(entry, entry.room.name === active)));
      // Re-rendering must not throw keyboard users back to the top of the page.
      if (hadFocus) list.querySelector<HTMLButtonElement>(`button[data-room="${CSS.escape(hadFocus)}"]`)?.focus();
    },
    clear() {
      list.replaceChildren();
    },
  };
}

function renderEntry({ room, unread, owned }: RoomEntry, active: boolean): HTMLLIElement {
  const button = el(
    'button',
    { className: 'room-button', attrs: { type: 'button', 'data-room': room.name } },
    el('span', { className: 'room-name', text: room.name, attrs: { title: room.name } }), // full name where the sidebar cuts it
  );
  if (room.private) button.append(el('span', { className: 'tag', text: owned ? 'private · yours' : 'private' }));
  if (unread > 0) {
    button.append(
      el(
        'span',
        { className: 'badge', text: String(Math.min(unread, 99)) + (unread > 99 ? '+' : '') },
        el('span', { className: 'visually-hidden', text: ' unread' }),
      ),
    );
  }
  if (active) button.setAttribute('aria-current', 'page');
  return el('li', {}, button);
}
