// The bodies carried on the bus, declared as schemas and checked like client frames (a bus
// message is input): exactly the declared keys, each of the declared type and shape, and the
// value handed on is the schema's output — a fresh object of the checked fields, never the
// parsed object itself. Even a correctly sealed envelope is checked, so a bug or a version
// skew on another instance cannot put an unchecked field in front of a user. A chat message
// is the `message` frame of shared/protocol.ts — declared once, for the client and the bus.
import * as v from 'valibot';
import { MessageFrame, NAME_PATTERN, RoomEventFrame } from '../../shared/protocol.ts';
import type { PresenceNotice, RevocationNotice, RoomFrame } from './bus.ts';

/** Sanitized HTML of one message: the sanitizer's output for at most MAX_TEXT_LENGTH characters stays far below this. */
const MAX_HTML_LENGTH = 64 * 1024;

/**
 * The outer body of every envelope: the sending instance (a random UUID), its sequence number
 * on this channel (1, 2, … from its start), its clock when it sent it (ms since the epoch),
 * and what it says. All of it is under the MAC, so a recording keeps its number and its age:
 * a receiver drops an order-sensitive body it has already passed or that is too old (redis-bus.ts).
 */
const Sent = v.strictObject({
  from: v.pipe(v.string(), v.regex(/^[0-9a-f-]{36}$/)),
  seq: v.pipe(v.number(), v.safeInteger(), v.minValue(1)),
  at: v.pipe(v.number(), v.safeInteger(), v.minValue(0)),
  body: v.unknown(),
});
/** Users online in one room on one instance: bounded like a socket count, never unbounded input. */
const MAX_PRESENCE_USERS = 100_000;

const BusMessage = v.union([
  v.pipe(
    MessageFrame,
    v.check((frame) => frame.html.length <= MAX_HTML_LENGTH && frame.ts > 0),
  ),
  RoomEventFrame,
]);
const Users = v.pipe(v.array(v.pipe(v.string(), v.regex(NAME_PATTERN))), v.maxLength(MAX_PRESENCE_USERS));
const PresenceRoom = v.pipe(v.string(), v.regex(NAME_PATTERN));
const Presence = v.variant('kind', [
  // The instance's whole set for the room: sent only on the periodic refresh.
  v.strictObject({ kind: v.literal('set'), room: PresenceRoom, users: Users }),
  // What changed in one coalescing window: users whose first socket came, or last went.
  v.strictObject({ kind: v.literal('delta'), room: PresenceRoom, online: Users, offline: Users }),
]);
const Revocation = v.variant('kind', [
  // A session id's SHA-256, base64url (server/store/session-id.ts).
  v.strictObject({ kind: v.literal('session'), sidHash: v.pipe(v.string(), v.regex(/^[A-Za-z0-9_-]{43}$/)), reason: v.picklist(['logout', 'expired']) }),
  v.strictObject({ kind: v.literal('user'), user: v.pipe(v.string(), v.regex(NAME_PATTERN)), reason: v.literal('password_changed') }),
]);
const Membership = v.strictObject({ user: v.pipe(v.string(), v.regex(NAME_PATTERN)) });

export type Sent = v.InferOutput<typeof Sent>;

const parsed = <S extends v.GenericSchema>(schema: S, input: unknown): v.InferOutput<S> | undefined => {
  const result = v.safeParse(schema, input);
  return result.success ? result.output : undefined;
};

export function parseSent(json: string): Sent | undefined {
  try {
    return parsed(Sent, JSON.parse(json));
  } catch {
    return undefined;
  }
}

/** Built by concatenation so a message frame already serialized for the local fan-out is reused as is. */
export function sentJson(from: string, seq: number, at: number, bodyJson: string): string {
  return `{"from":${JSON.stringify(from)},"seq":${seq},"at":${at},"body":${bodyJson}}`;
}

export const messageFrom = (body: unknown): RoomFrame | undefined => parsed(BusMessage, body);
export const presenceFrom = (body: unknown): PresenceNotice | undefined => parsed(Presence, body);
export const revocationFrom = (body: unknown): RevocationNotice | undefined => parsed(Revocation, body);
export const membershipFrom = (body: unknown): string | undefined => parsed(Membership, body)?.user;
