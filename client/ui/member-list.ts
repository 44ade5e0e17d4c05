// "People in this room": who is a member and who is online (presence), for the active room.
// The owner of a private room gets a Remove button per member and a Cancel button per
// pending invitation — buttons on names the server listed, not a free-text box. A member
// who is not the owner gets "Leave this room". Text only (ASVS 3.2.2).
import type { MembersFrame, RoomInfo } from '../../shared/protocol.ts';
import { byId, el } from './dom.ts';

export type MemberActions = {
  /** The owner removes a member or cancels a pending invitation (the same `remove` frame). */
  remove(user: string): void;
  leave(): void;
};

export type MemberList = {
  render(room: RoomInfo | undefined, me: string, members: MembersFrame | undefined, online: ReadonlySet<string>): void;
  clear(): void;
};

export function createMemberList(actions: MemberActions): MemberList {
  const section = byId('people', HTMLElement);
  const details = byId('people-details', HTMLDetailsElement);
  const heading = byId('people-heading', HTMLElement);
  const list = byId('member-list', HTMLUListElement);
  const leave = byId('leave-room', HTMLButtonElement);
  // On a phone the list starts folded (its summary says how many): the messages keep the screen.
  details.open = !matchMedia('(max-width: 44rem)').matches;

  list.addEventListener('click', (event) => {
    const button = event.target instanceof Element ? event.target.closest('button[data-user]') : null;
    const user = button?.getAttribute('data-user');
    if (user) actions.remove(user);
  });
  leave.addEventListener('click', () => actions.leave());

  return {
    render(room, me, members, online) {
      section.hidden = !room;
      if (!room) return list.replaceChildren();
      const isOwner = room.private && room.owner === me;
      leave.hidden = !room.private || isOwner;
      // A public room has no member list: everyone signed in may read it. Show who is online.
      const names = room.private && members ? members.members : [...online];
      const entries = [...names].sort().map((user) => memberEntry(room, user, online.has(user), isOwner && user !== me));
      const invited = isOwner ? (members?.invited ?? []) : [];
      list.replaceChildren(...entries, ...invited.map((user) => invitedEntry(room, user)));
      heading.textContent = `People in this room (${names.length})`;
    },
    clear() {
      list.replaceChildren();
      section.hidden = true;
      leave.hidden = true;
    },
  };
}

function memberEntry(room: RoomInfo, user: string, online: boolean, removable: boolean): HTMLLIElement {
  const item = el(
    'li',
    { attrs: { 'data-member': user } },
    el('span', { className: 'member-name', text: user + (room.owner === user ? ' (owner)' : '') }),
    el('span', { className: 'status', text: online ? 'online' : 'offline', attrs: { 'data-online': String(online) } }),
  );
  if (removable) item.append(actionButton('Remove', ` ${user} from ${room.name}`, user, `remove-${user}`));
  return item;
}

function invitedEntry(room: RoomInfo, user: string): HTMLLIElement {
  return el(
    'li',
    { attrs: { 'data-invited': user } },
    el('span', { className: 'member-name', text: user }),
    el('span', { className: 'status', text: 'invited' }),
    actionButton('Cancel invitation', ` of ${user} to ${room.name}`, user, `cancel-${user}`),
  );
}

/** A button whose accessible name says whom it acts on ("Remove bob from club"). */
function actionButton(label: string, hidden: string, user: string, testId: string): HTMLButtonElement {
  return el(
    'button',
    { className: 'quiet', attrs: { type: 'button', 'data-user': user, 'data-testid': testId } },
    document.createTextNode(label),
    el('span', { className: 'visually-hidden', text: hidden }),
  );
}
