// Pending invitations in the sidebar: who invited us to which room, with Accept and Decline.
// A room is not ours (not in the room list, nothing of it reaches us) until we accept.
// Text only (ASVS 3.2.2): names go in through textContent.
import type { Invitation } from '../../shared/protocol.ts';
import { byId, el } from './dom.ts';

export type InvitationActions = {
  accept(room: string): void;
  decline(room: string): void;
};

export type InvitationList = {
  render(invitations: readonly Invitation[]): void;
  clear(): void;
};

export function createInvitationList(actions: InvitationActions): InvitationList {
  const section = byId('invitations', HTMLElement);
  const list = byId('invitation-list', HTMLUListElement);

  // One listener for every entry (event delegation).
  list.addEventListener('click', (event) => {
    const button = event.target instanceof Element ? event.target.closest('button[data-room]') : null;
    const room = button?.getAttribute('data-room');
    if (!button || !room) return;
    if (button.getAttribute('data-action') === 'accept') actions.accept(room);
    else actions.decline(room);
  });

  return {
    render(invitations) {
      section.hidden = invitations.length === 0;
      list.replaceChildren(...invitations.map(renderInvitation));
    },
    clear() {
      list.replaceChildren();
      section.hidden = true;
    },
  };
}

function renderInvitation({ room, from }: Invitation): HTMLLIElement {
  // The visually hidden room name makes each button's accessible name unique ("Accept club").
  const button = (action: 'accept' | 'decline', label: string) =>
    el(
      'button',
      {
        className: action === 'accept' ? 'primary' : '',
        attrs: {
          type: 'button',
          'data-room': room,
          'data-action': action,
          'data-testid': `${action}-${room}`,
          // A decline is "not from you" (decision 018): the server withdraws the inviter's other invitations and refuses new ones for a while.
          ...(action === 'decline' ? { title: `Decline: ${from} cannot invite you again for a while` } : {}),
        },
      },
      document.createTextNode(label),
      el('span', { className: 'visually-hidden', text: ` invitation to ${room}` }),
    );
  return el(
    'li',
    { attrs: { 'data-invitation': room } },
    el('span', { text: `${from} invited you to ${room}` }),
    el('span', { className: 'invitation-actions' }, button('accept', 'Accept'), button('decline', 'Decline')),
  );
}
