// The two page-level message areas: #error (role=alert, announced at once, stays
// until dismissed or replaced) and #notice (role=status, polite, fades after a while).
// Both receive text only (ASVS 3.2.2): server messages are shown via textContent.
// They overlay the top of the page (styles.css: .page-messages is position: fixed), so
// showing one never pushes the layout down and hides the newest message.
//
// Three rules keep them from contradicting each other:
//  - an error replaces whatever confirmation is showing or still waiting for its answer;
//  - a request's confirmation ("Invitation sent.") waits for the server's answer
//    (expectConfirmation → confirmNext), so it never appears next to that request's error;
//  - an error about the connection being down clears itself once the connection is back.
import { byId } from './dom.ts';

const NOTICE_MS = 8_000;
/** A request that got no answer in this long gets no confirmation either (the socket may have dropped). */
const ANSWER_MS = 15_000;

let noticeTimer: ReturnType<typeof setTimeout> | undefined;
/** What the error on show is about: 'connection' ones clear on reconnect. */
let errorKind: 'connection' | 'other' | null = null;
/** Confirmations waiting for their request's answer, oldest first. */
let awaiting: { message: string; expires: number }[] = [];

function errorBox(): HTMLElement {
  return byId('error', HTMLElement);
}

export function initNotices(): void {
  byId('error-dismiss', HTMLButtonElement).addEventListener('click', clearError);
}

export function showError(message: string): void {
  setError(message, 'other');
}

/** "Not connected right now…": cleared by connectionRestored(). */
export function showConnectionError(message: string): void {
  setError(message, 'connection');
}

function setError(message: string, kind: 'connection' | 'other'): void {
  // The error is the answer: no confirmation that was waiting (or is showing) may stand next to it.
  awaiting = [];
  clearNotice();
  errorBox().textContent = message;
  errorKind = kind;
  byId('error-dismiss', HTMLButtonElement).hidden = false;
}

export function clearError(): void {
  errorBox().textContent = '';
  errorKind = null;
  byId('error-dismiss', HTMLButtonElement).hidden = true;
}

/** The live connection is back: an error that only said it was down is no longer true. */
export function connectionRestored(): void {
  if (errorKind === 'connection') clearError();
}

/** A polite, temporary status message ("Room created."). */
export function announce(message: string): void {
  const notice = byId('notice', HTMLElement);
  notice.textContent = message;
  clearTimeout(noticeTimer);
  noticeTimer = setTimeout(clearNotice, NOTICE_MS);
}

/**
 * A request went out whose success the server answers with a frame of its own (not an
 * error): `message` is shown by confirmNext() when that answer arrives, never before —
 * and never if an error arrives first.
 */
export function expectConfirmation(message: string): void {
  awaiting.push({ message, expires: Date.now() + ANSWER_MS });
}

/** The server answered the oldest waiting request with success: confirm it. */
export function confirmNext(): void {
  const now = Date.now();
  awaiting = awaiting.filter((item) => item.expires > now);
  const next = awaiting.shift();
  if (!next) return;
  clearError(); // the newest answer wins: an earlier request's error no longer stands beside it
  announce(next.message);
}

function clearNotice(): void {
  clearTimeout(noticeTimer);
  byId('notice', HTMLElement).textContent = '';
}

export function clearNotices(): void {
  awaiting = [];
  clearError();
  clearNotice();
}
