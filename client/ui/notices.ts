// The two page-level message areas: #error (role=alert, announced at once, stays
// until dismissed or replaced) and #notice (role=status, polite, fades after a while).
// Both receive text only (ASVS 3.2.2): server messages are shown via textContent.
import { byId } from './dom.ts';

const NOTICE_MS = 8_000;

let noticeTimer: ReturnType<typeof setTimeout> | undefined;

function errorBox(): HTMLElement {
  return byId('error', HTMLElement);
}

export function initNotices(): void {
  byId('error-dismiss', HTMLButtonElement).addEventListener('click', clearError);
}

export function showError(message: string): void {
  errorBox().textContent = message;
  byId('error-dismiss', HTMLButtonElement).hidden = false;
}

export function clearError(): void {
  errorBox().textContent = '';
  byId('error-dismiss', HTMLButtonElement).hidden = true;
}

/** A polite, temporary status message ("Room created."). */
export function announce(message: string): void {
  const notice = byId('notice', HTMLElement);
  notice.textContent = message;
  clearTimeout(noticeTimer);
  noticeTimer = setTimeout(() => {
    notice.textContent = '';
  }, NOTICE_MS);
}

export function clearNotices(): void {
  clearError();
  clearTimeout(noticeTimer);
  byId('notice', HTMLElement).textContent = '';
}
