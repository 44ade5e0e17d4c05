// Rooms with consent, for tests: an invitation is a membership only once the invitee accepts.
import type { RoomEventFrame } from '../../shared/protocol.ts';
import type { Client } from './server.ts';

/** The owner invites `user` (whose socket is `invitee`) to `room`; the invitee accepts; resolves once the room is theirs. */
export async function inviteAndAccept(owner: Client, invitee: Client, room: string, user: string): Promise<void> {
  owner.send({ type: 'invite', room, user });
  for (;;) {
    const invitation = await invitee.next('invitation_added');
    if (invitation.invitation.room === room) break;
  }
  invitee.send({ type: 'accept', room });
  for (;;) {
    const added = await invitee.next('room_added');
    if (added.room.name === room) return;
  }
}

/** The next room_event of this kind about this user (the client must be joined to the room). */
export async function nextEvent(client: Client, room: string, event: RoomEventFrame['event'], user: string, timeoutMs = 3000): Promise<RoomEventFrame> {
  for (;;) {
    const frame = await client.next('room_event', timeoutMs);
    if (frame.room === room && frame.event === event && frame.user === user) return frame;
  }
}
