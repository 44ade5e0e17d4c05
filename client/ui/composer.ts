// The message composer: a labelled <textarea> and a Send button. Enter sends,
// Shift+Enter adds a line. While disconnected the Send button is disabled but the
// text stays in the box, so nothing typed is lost.
import { MAX_TEXT_LENGTH } from '../../shared/protocol.ts';
import { byId } from './dom.ts';
import { showConnectionError, showError } from './notices.ts';

export type Composer = {
  /** Which room the composer writes to (null: none), and whether the socket is up. */
  update(room: string | null, connected: boolean): void;
  focus(): void;
  clear(): void;
};

/** `send` returns false when the text could not be handed to the socket (it stays in the box). */
export function createComposer(send: (text: string) => boolean): Composer {
  const form = byId('composer-form', HTMLFormElement);
  const textarea = byId('composer', HTMLTextAreaElement);
  const label = byId('composer-label', HTMLLabelElement);
  const button = byId('send', HTMLButtonElement);
  textarea.maxLength = MAX_TEXT_LENGTH;

  textarea.addEventListener('keydown', (event) => {
    // isComposing: Enter that confirms an IME candidate (Japanese, Chinese…) must not send.
    if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      form.requestSubmit();
    }
  });

  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const text = textarea.value;
    if (text.trim().length === 0) return;
    if (text.length > MAX_TEXT_LENGTH) {
      showError(`Messages can be at most ${MAX_TEXT_LENGTH} characters.`);
      return;
    }
    if (button.disabled) {
      showConnectionError('Not connected right now. Your message is still in the box; send it once the connection is back.');
      return;
    }
    if (send(text)) textarea.value = '';
    textarea.focus();
  });

  return {
    update(room, connected) {
      label.textContent = room ? `Message ${room}` : 'Message';
      textarea.placeholder = room ? `Message ${room}` : '';
      textarea.disabled = room === null;
      button.disabled = room === null || !connected;
    },
    focus() {
      textarea.focus();
    },
    clear() {
      textarea.value = '';
    },
  };
}
