// Room management forms: "New private room" in the sidebar, and the owner-only invite
// form above the message log. Removing a member or cancelling an invitation is a button
// in the member list (member-list.ts), never a free-text box.
//
// The protocol has no success reply to create / invite — only an `error` frame on
// failure, a `room_added` frame for a create, and an "invited" line in the room for an
// invitation. So a create is confirmed when the room appears in the list.
import { NAME_PATTERN } from '../../shared/protocol.ts';
import type { RoomInfo } from '../../shared/protocol.ts';
import { byId } from './dom.ts';
import { showError } from './notices.ts';

export type RoomActions = {
  create(room: string): boolean;
  invite(user: string): boolean;
};

export type RoomsPanel = {
  /** Show the member controls only to the owner of the active (private) room. */
  update(active: RoomInfo | undefined, isOwner: boolean): void;
  /** The room we asked to create has appeared. */
  created(): void;
  clear(): void;
};

const NAME_RULE = '2–32 characters: a–z, 0–9, “_” or “-”, starting with a letter or digit';

export function createRoomsPanel(actions: RoomActions): RoomsPanel {
  const createForm = byId('create-room-form', HTMLFormElement);
  const newRoom = byId('new-room', HTMLInputElement);
  const members = byId('members', HTMLElement);
  const inviteForm = byId('invite-form', HTMLFormElement);
  const inviteUser = byId('invite-user', HTMLInputElement);
  const meta = byId('room-meta', HTMLElement);

  onName(createForm, newRoom, 'Room names', (name) => actions.create(name));
  onName(inviteForm, inviteUser, 'Usernames', (name) => actions.invite(name) && clearInput(inviteUser));

  return {
    update(active, isOwner) {
      members.hidden = !(active?.private && isOwner);
      if (!active) meta.textContent = '';
      else if (!active.private) meta.textContent = 'Public room: everyone signed in can read and write here.';
      else if (isOwner) meta.textContent = 'Private room you own: invite people by username; they join once they accept.';
      else meta.textContent = `Private room owned by ${active.owner ?? 'nobody'}.`; // text only (ASVS 3.2.2)
    },
    created() {
      newRoom.value = '';
    },
    clear() {
      createForm.reset();
      inviteForm.reset();
      members.hidden = true;
      meta.textContent = '';
    },
  };
}

/** Wire a one-field form whose value must be a valid name. */
function onName(form: HTMLFormElement, input: HTMLInputElement, what: string, submit: (name: string) => unknown): void {
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const name = input.value.trim().toLowerCase();
    if (!NAME_PATTERN.test(name)) {
      showError(`${what} are ${NAME_RULE}.`);
      input.focus();
      return;
    }
    submit(name);
  });
}

function clearInput(input: HTMLInputElement): true {
  input.value = '';
  return true;
}
