// The lab's victim: an account with something worth stealing. At start the lab makes sure
// 'victim' exists, owns a private room, and has written a note to self in it — so the
// hijacking page has something visible to read out when the Origin check is off, and
// nothing when it is on. Seeded through Parley's real API (parley-client.ts), like any user.
import { openSocket, parleyRequest, signedInCookie } from './parley-client.ts';

/** Sign in to Parley as this account for the lessons (docs/workshop.md); the lab prints it too. */
export const VICTIM = {
  username: 'victim',
  password: 'gullible lab passphrase 1',
  room: 'victim-notes',
  note: 'Note to self: the office door code is 4711. Do not tell anyone.',
} as const;

/** Idempotent: a lab restarted on the same data directory finds the note already there. */
export async function seedVictim(parleyOrigin: string, ca: string): Promise<void> {
  const cookie = await signedInCookie(parleyOrigin, ca, VICTIM);
  try {
    const ws = await openSocket(parleyOrigin, ca, cookie);
    try {
      const hasRoom = (frame: Record<string, unknown>) =>
        frame['type'] === 'rooms' && Array.isArray(frame['rooms']) && frame['rooms'].some((room: { name?: unknown }) => room.name === VICTIM.room);
      const first = await ws.next((f) => f['type'] === 'rooms');
      if (!hasRoom(first)) {
        ws.send({ type: 'create', room: VICTIM.room });
        // A created room arrives as a change to the list (room_added), not a whole new list.
        await ws.next((f) => f['type'] === 'room_added' && (f['room'] as { name?: unknown } | undefined)?.name === VICTIM.room);
      }
      ws.send({ type: 'join', room: VICTIM.room });
      const history = await ws.next((f) => f['type'] === 'history' && f['room'] === VICTIM.room);
      const messages = Array.isArray(history['messages']) ? (history['messages'] as Array<{ user?: unknown }>) : [];
      if (!messages.some((m) => m.user === VICTIM.username)) {
        ws.send({ type: 'send', room: VICTIM.room, text: VICTIM.note, clientId: 'lab-victim-note' });
        const reply = await ws.next((f) => f['clientId'] === 'lab-victim-note');
        if (reply['type'] !== 'ack') throw new Error(`the victim's note was refused: ${String(reply['message'])}`);
      }
    } finally {
      ws.close();
    }
  } finally {
    // The lab's own session for the victim ends here; the workshop's victim signs in in the browser.
    await parleyRequest(parleyOrigin, ca, 'POST', '/api/logout', {}, cookie);
  }
}
