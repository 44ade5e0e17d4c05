// The tab title: "(3) lobby · Parley".
//
// The count is what the reader has not seen yet: messages from other people that arrived
//  - in a room other than the one shown (the same number as that room's badge in the
//    sidebar; it clears when the room is opened), plus
//  - in the room shown while this tab was hidden (another tab or window in front; it
//    clears when the tab is shown again).
// Our own messages never count. The title is text only: room names are [a-z0-9_-].

export type TabTitle = {
  /** The room shown (null: none) and the unread count of every other room together. */
  update(room: string | null, unreadElsewhere: number): void;
  /** A message from someone else arrived in the room shown. */
  messageInShownRoom(): void;
  clear(): void;
};

export function createTabTitle(): TabTitle {
  let room: string | null = null;
  let elsewhere = 0;
  let whileHidden = 0;

  function render(): void {
    const unread = elsewhere + whileHidden;
    const base = room ? `${room} · Parley` : 'Parley';
    document.title = unread > 0 ? `(${unread > 99 ? '99+' : unread}) ${base}` : base;
  }

  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState === 'visible' && whileHidden > 0) {
      whileHidden = 0;
      render();
    }
  });

  return {
    update(shown, unreadElsewhere) {
      if (shown !== room) whileHidden = 0;
      room = shown;
      elsewhere = unreadElsewhere;
      render();
    },
    messageInShownRoom() {
      if (document.visibilityState !== 'hidden') return;
      whileHidden += 1;
      render();
    },
    clear() {
      room = null;
      elsewhere = 0;
      whileHidden = 0;
      render();
    },
  };
}
