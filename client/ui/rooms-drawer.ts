// On narrow screens (styles.css: max-width 44rem) the room sidebar is a drawer over the
// conversation, so the messages get the screen. The "Rooms" button in the top bar opens and
// closes it (aria-expanded, aria-controls); opening moves focus into it, to the room shown;
// Escape, the scrim, the button or picking a room close it, and focus returns to the button
// (or, after picking a room, to the composer the chat screen focuses); tabbing out of it closes it too. On wide screens the
// button is not displayed and the sidebar is always there, whatever the drawer's state.
import { byId, el } from './dom.ts';

export type RoomsDrawer = { close(): void };

export function createRoomsDrawer(): RoomsDrawer {
  const toggle = byId('rooms-toggle', HTMLButtonElement);
  const drawer = byId('rooms-drawer', HTMLElement);
  const scrim = byId('rooms-scrim', HTMLElement);

  function isOpen(): boolean {
    return toggle.getAttribute('aria-expanded') === 'true';
  }

  function setOpen(open: boolean): void {
    toggle.setAttribute('aria-expanded', String(open));
    drawer.classList.toggle('open', open);
    scrim.hidden = !open;
  }

  function open(): void {
    setOpen(true);
    const target = drawer.querySelector<HTMLElement>('[aria-current="page"]') ?? drawer.querySelector<HTMLElement>('button, input');
    target?.focus();
  }

  function close(returnFocus: boolean): void {
    if (!isOpen()) return;
    setOpen(false);
    if (returnFocus) toggle.focus();
  }

  toggle.addEventListener('click', () => (isOpen() ? close(true) : open()));
  scrim.addEventListener('click', () => close(true));
  drawer.addEventListener('keydown', (event) => {
    if (event.key === 'Escape' && isOpen()) {
      event.preventDefault();
      close(true);
    }
  });
  toggle.addEventListener('keydown', (event) => {
    if (event.key === 'Escape' && isOpen()) close(true);
  });
  // Not a modal: Tab may leave it, and then it closes rather than hide what now has focus.
  drawer.addEventListener('focusout', (event) => {
    const to = event.relatedTarget;
    if (isOpen() && to instanceof Node && !drawer.contains(to) && to !== toggle) close(false);
  });
  // Picking a room is what the drawer was opened for: get out of the way of its messages.
  drawer.addEventListener('click', (event) => {
    if (event.target instanceof Element && event.target.closest('button[data-room]')) close(false);
  });

  // Closed, the drawer hides the rooms' unread badges: the button sums them (the list stays their one source).
  const list = byId('room-list', HTMLElement);
  const toggleBadge = byId('rooms-toggle-unread', HTMLElement);
  new MutationObserver(() => {
    let unread = 0;
    for (const badge of list.querySelectorAll('.badge')) unread += Number.parseInt(badge.textContent ?? '', 10) || 0;
    toggleBadge.hidden = unread === 0;
    toggleBadge.replaceChildren(String(unread), el('span', { className: 'visually-hidden', text: ' unread' }));
  }).observe(list, { childList: true, subtree: true, characterData: true });

  setOpen(false);
  return { close: () => close(false) };
}
