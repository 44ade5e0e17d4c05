// Join / leave / invite lines of the active room ("bob joined", "alice removed carol"),
// sent by the server to the room's members like messages, shown as plain text.
import type { RoomEventFrame } from '../../shared/protocol.ts';
import { byId, el } from './dom.ts';

export type RoomEvents = {
  render(events: readonly RoomEventFrame[]): void;
  clear(): void;
};

/** One line of text for an event (also used for the live announcement). */
export function describeEvent({ event, user, by }: RoomEventFrame): string {
  switch (event) {
    case 'joined':
      return `${user} joined the room.`;
    case 'left':
      return `${user} left the room.`;
    case 'removed':
      return by ? `${by} removed ${user} from the room.` : `${user} was removed from the room.`;
    case 'invited':
      return by ? `${by} invited ${user}.` : `${user} was invited.`;
    case 'uninvited':
      return `The invitation of ${user} was cancelled.`;
    case 'declined':
      return `${user} declined the invitation.`;
  }
}

export function createRoomEvents(): RoomEvents {
  const list = byId('room-events', HTMLOListElement);
  return {
    render(events) {
      list.hidden = events.length === 0;
      list.replaceChildren(...events.map((frame) => el('li', { text: `${new Date(frame.ts).toLocaleTimeString()} · ${describeEvent(frame)}` })));
      list.scrollTop = list.scrollHeight;
    },
    clear() {
      list.replaceChildren();
      list.hidden = true;
    },
  };
}
