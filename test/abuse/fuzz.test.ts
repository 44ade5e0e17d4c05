// Protocol fuzzing against the real server (a child process running server/main.ts): ≥ 100k
// generated and mutated frames over authenticated sockets from several users, while a
// well-behaved user keeps chatting. Run: npx node --test test/abuse/fuzz.test.ts
// Reproduce a run with FUZZ_SEED=<seed> (printed as a diagnostic).
//
// Two kinds of input:
//   - well-framed but invalid messages (bad JSON, unknown types, missing/extra/mistyped
//     fields, huge numbers and strings, deep nesting, prototype keys, rooms that do not exist
//     or are private, byte-mutated valid frames), sent in batches on a long-lived socket, some
//     fragmented with pings in between: each must get exactly one `error` frame, and a
//     sentinel request after each batch proves the socket is still usable;
//   - protocol violations (reserved opcodes, RSV bits, oversized or fragmented control frames,
//     continuations with no start, reserved close codes, unmasked frames, binary frames,
//     invalid UTF-8, oversized lengths), each on a fresh socket: each must end with its own
//     close code (1002, 1003, 1007, 1009), never 1011; frames sent after a client close must be
//     ignored; a ping flood (more than 60 pongs pending) is cut by ws without a close frame.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { parseClientFrame } from '../../shared/protocol.ts';
import { joined, PASSWORD, signUp } from '../helpers/server.ts';
import { closePayload, frame, mulberry32, OP, percentile, RawWs, sleep, spawnServer, startObserver, type ChildServer, type Observer } from './harness.ts';

const SEED = Number(process.env['FUZZ_SEED'] ?? 0x5eed2026);
const TARGET_FRAMES = 110_000;
const MAX_RUN_MS = 75_000;
/** Frames are paced to reach the target in about this long: a fuzz, not a CPU-saturating flood (that is floods.test.ts). */
const PACE_MS = 45_000;
const WORKERS = 4;
const BATCH = 250;
/** A protocol-violation episode (fresh socket) after every this many batches, per worker. */
const EPISODE_EVERY = 1;
const EPISODES_PER_ROUND = 3;
const OBSERVER_EVERY_MS = 100;
const MAX_PINGS_PER_BATCH = 30;

// Limits raised so the fuzz reaches validation, not the rate limiter (tested in floods.test.ts).
const FUZZ_ENV = {
  WS_MESSAGES_PER_SECOND: '100000',
  WS_MESSAGE_BURST: '1000000',
  WS_ABUSE_THRESHOLD: '1000000',
  WS_MAX_CONNECTIONS_PER_USER: '1000',
};

type Rng = () => number;
const int = (rng: Rng, lo: number, hi: number) => lo + Math.floor(rng() * (hi - lo + 1));
const pick = <T>(rng: Rng, items: readonly T[]): T => items[Math.floor(rng() * items.length)]!;

const PRINTABLE = ' !"#$%&\'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefghijklmnopqrstuvwxyz{|}~';
const ODD_STRINGS = [
  '',
  ' ',
  '\u0000',
  '\u200b',
  '\u202e',
  '🦜',
  'é',
  '\ud800',
  '__proto__',
  'constructor',
  'prototype',
  'toString',
  'hasOwnProperty',
  'Lobby',
  'LOBBY',
  'lobby ',
  ' lobby',
  'lobby\u0000',
  'ｌobby',
  '../lobby',
  'a',
  '-x',
  '_x',
  '<script>alert(1)</script>',
  '{"$gt":""}',
];
const TYPES = ['join', 'send', 'history', 'create', 'invite', 'remove', 'accept', 'decline', 'leave', 'members'] as const;
/** Rooms that exist but are off limits (vault: private, owner "observer") or that do not exist. */
const BAD_ROOMS = ['vault', 'nosuchroom', 'constructor', 'prototype', 'tostring', 'hasownproperty', 'proto', 'x0'];
const PROTO_KEYS = ['__proto__', 'constructor', 'prototype'];

function randomAscii(rng: Rng, length: number): string {
  let out = '';
  for (let i = 0; i < length; i++) out += PRINTABLE[Math.floor(rng() * PRINTABLE.length)];
  return out;
}

function oddValue(rng: Rng): unknown {
  switch (int(rng, 0, 13)) {
    case 0:
      return null;
    case 1:
      return pick(rng, [true, false]);
    case 2:
      return pick(rng, [0, -1, 1.5, -0, 1e21, 2 ** 53, -(2 ** 63), Number.MAX_VALUE, 5e-324]);
    case 3:
      return [];
    case 4:
      return {};
    case 5:
      return [1, 'lobby'];
    case 6:
      return { __proto__: null, toString: 'x' };
    case 7:
      return pick(rng, ODD_STRINGS);
    case 8:
      return 'x'.repeat(int(rng, 33, 300));
    case 9:
      return randomAscii(rng, int(rng, 0, 40));
    case 10:
      return { $ne: null };
    case 11:
      return ['lobby'];
    case 12:
      return 'lobby'.repeat(int(rng, 2, 50));
    default:
      return int(rng, -1000, 1000);
  }
}

/** A raw JSON literal no JSON.stringify would write: huge digit runs, exponents, deep nesting. */
function oddLiteral(rng: Rng): string {
  switch (int(rng, 0, 5)) {
    case 0:
      return '9'.repeat(int(rng, 20, 20_000));
    case 1:
      return `1e${int(rng, 300, 99999)}`;
    case 2:
      return `-${'9'.repeat(int(rng, 17, 400))}.${'9'.repeat(int(rng, 1, 400))}`;
    case 3: {
      const depth = int(rng, 100, 20_000);
      return '['.repeat(depth) + ']'.repeat(depth);
    }
    case 4: {
      const depth = int(rng, 100, 5_000);
      return '{"a":'.repeat(depth) + '1' + '}'.repeat(depth);
    }
    default:
      return `"${'\\u0000'.repeat(int(rng, 1, 2000))}"`;
  }
}

const VALID_TEMPLATES = [
  '{"type":"join","room":"lobby"}',
  '{"type":"send","room":"lobby","text":"hello there","clientId":"c1"}',
  '{"type":"history","room":"lobby","before":12}',
  '{"type":"create","room":"team"}',
  '{"type":"invite","room":"vault","user":"fuzz1"}',
  '{"type":"remove","room":"vault","user":"observer"}',
];

function mutate(rng: Rng, text: string): string {
  let out = text;
  const n = int(rng, 1, 4);
  for (let i = 0; i < n; i++) {
    const at = int(rng, 0, Math.max(0, out.length - 1));
    switch (int(rng, 0, 5)) {
      case 0: // replace one character
        out = out.slice(0, at) + PRINTABLE[Math.floor(rng() * PRINTABLE.length)] + out.slice(at + 1);
        break;
      case 1: // delete a run
        out = out.slice(0, at) + out.slice(at + int(rng, 1, 5));
        break;
      case 2: // insert junk
        out = out.slice(0, at) + randomAscii(rng, int(rng, 1, 6)) + out.slice(at);
        break;
      case 3: // duplicate a slice
        out = out.slice(0, at) + out.slice(at, at + int(rng, 1, 20)) + out.slice(at);
        break;
      case 4: // truncate
        out = out.slice(0, at);
        break;
      default: // swap a quote or brace
        out = out.replace(pick(rng, ['"', '{', '}', ':', ',']), pick(rng, ["'", '[', ']', ';', '']));
    }
  }
  return out;
}

/**
 * Would the server answer this text with something other than an `error` frame? Only a
 * schema-valid join/send/history of the lobby, or a create of a free name, does; the
 * generator re-rolls those so that every generated message must be refused.
 */
function wouldSucceed(text: string): boolean {
  const result = parseClientFrame(text);
  if (!result.ok) return false;
  const value = result.value;
  if (value.type === 'create') return value.room !== 'lobby' && value.room !== 'vault';
  if (value.type === 'join' || value.type === 'send' || value.type === 'history') return value.room === 'lobby';
  return false; // invite/remove: no fuzz user owns a private room → forbidden or no_such_room
}

/** One well-framed message the server must refuse with an `error` frame. */
function invalidMessage(rng: Rng): string {
  for (;;) {
    const text = candidate(rng);
    if (Buffer.byteLength(text) <= 60_000 && !wouldSucceed(text)) return text;
  }
}

function candidate(rng: Rng): string {
  const type = pick(rng, TYPES);
  switch (int(rng, 0, 15)) {
    case 0: // not JSON at all
      return (
        pick(rng, ['', ' ', '{', '}', '{"type":', 'null,', "{'type':'join'}", '{"type":"join",}', 'NaN', 'undefined', '[', '"']) +
        (rng() < 0.5 ? randomAscii(rng, int(rng, 0, 30)) : '')
      );
    case 1: // JSON, not an object
      return pick(rng, ['null', 'true', '0', '"join"', '[]', '[{"type":"join","room":"lobby"}]', '1e999', '-0', '""']);
    case 2: // unknown or mistyped type
      return JSON.stringify({ type: rng() < 0.5 ? oddValue(rng) : randomAscii(rng, int(rng, 1, 12)), room: 'lobby' });
    case 3: // missing field
      return pick(rng, [
        '{"type":"join"}',
        '{"type":"send","room":"lobby"}',
        '{"type":"send","text":"hi"}',
        '{"type":"history","room":"lobby"}',
        '{"type":"invite","room":"vault"}',
        '{"room":"lobby"}',
        '{}',
      ]);
    case 4: {
      // extra field, prototype-ish keys included (raw JSON: JSON.parse makes them own keys)
      const key = rng() < 0.5 ? pick(rng, PROTO_KEYS) : randomAscii(rng, int(rng, 1, 10)).replace(/["\\]/g, '');
      return `{"type":"join","room":"lobby","${key}":${JSON.stringify(oddValue(rng)) ?? 'null'}}`;
    }
    case 5: // wrong field type
      return JSON.stringify({
        type,
        room: oddValue(rng),
        ...(type === 'send' ? { text: 'hi' } : {}),
        ...(type === 'history' ? { before: 5 } : {}),
        ...(type === 'invite' || type === 'remove' ? { user: 'fuzz1' } : {}),
      });
    case 6: // huge or odd numbers for before
      return `{"type":"history","room":"lobby","before":${rng() < 0.5 ? oddLiteral(rng).replace(/^\[.*|^\{.*|^".*/s, '0') : (JSON.stringify(oddValue(rng)) ?? 'null')}}`;
    case 7: // deep nesting / huge literals in a field
      return `{"type":"send","room":"lobby","text":${oddLiteral(rng)}}`;
    case 8: // empty, blank or over-long text
      return JSON.stringify({ type: 'send', room: 'lobby', text: pick(rng, ['', ' ', '\n\t ', ' '.repeat(500), 'x'.repeat(int(rng, 2001, 30_000))]) });
    case 9: // over-long names and client ids
      return JSON.stringify(
        rng() < 0.5
          ? { type: 'send', room: 'lobby', text: 'hi', clientId: rng() < 0.5 ? '' : 'c'.repeat(int(rng, 65, 5000)) }
          : { type: pick(rng, TYPES), room: 'r'.repeat(int(rng, 33, 5000)) },
      );
    case 10: // a room that does not exist, or a private one the user is not in
      return JSON.stringify(
        type === 'send'
          ? { type, room: pick(rng, BAD_ROOMS), text: 'hello', clientId: `c${int(rng, 0, 1e6)}` }
          : type === 'history'
            ? { type, room: pick(rng, BAD_ROOMS), before: int(rng, 1, 1e9) }
            : type === 'invite' || type === 'remove'
              ? { type, room: pick(rng, ['lobby', ...BAD_ROOMS]), user: pick(rng, ['observer', 'fuzz1', 'nobody']) }
              : type === 'create'
                ? { type, room: pick(rng, ['lobby', 'vault']) }
                : { type, room: pick(rng, BAD_ROOMS) },
      );
    case 11: // __proto__ and friends as a room or a user
      return JSON.stringify({
        type: pick(rng, ['join', 'create', 'history']),
        room: pick(rng, ['__proto__', 'Constructor', '__defineGetter__', 'valueOf()']),
        before: 1,
      });
    case 12: // prototype pollution payloads
      return pick(rng, [
        '{"type":"join","room":"lobby","__proto__":{"polluted":true}}',
        '{"__proto__":{"type":"join","room":"lobby"}}',
        '{"constructor":{"prototype":{"polluted":true}},"type":"join","room":"lobby"}',
        '{"type":"send","room":"lobby","text":"x","clientId":{"__proto__":{"length":1}}}',
        '{"type":"__proto__","room":"lobby"}',
        '{"type":"constructor"}',
      ]);
    case 13: // unicode oddities in names
      return JSON.stringify({ type: 'join', room: pick(rng, ODD_STRINGS) + (rng() < 0.3 ? '🦜' : '') });
    default: // a valid frame, byte-mutated
      return mutate(rng, pick(rng, VALID_TEMPLATES));
  }
}

/** Invalid UTF-8 byte sequences (RFC 3629): stray continuation, overlong, surrogate, > U+10FFFF, truncated. */
const BAD_UTF8 = [
  [0xff],
  [0xfe],
  [0x80],
  [0xbf],
  [0xc0, 0xaf],
  [0xc1, 0xbf],
  [0xe0, 0x80, 0xaf],
  [0xed, 0xa0, 0x80],
  [0xed, 0xbf, 0xbf],
  [0xf4, 0x90, 0x80, 0x80],
  [0xf5, 0x80, 0x80, 0x80],
  [0xf8, 0x88, 0x80, 0x80, 0x80],
  [0xe2, 0x82],
  [0xf0, 0x9f, 0xa6],
];

type Episode = { name: string; frames: Buffer[]; expect: number; /** frames sent after a client close: must be ignored */ afterClose?: boolean };

/** One protocol violation (on a fresh socket) and the close code it must earn. */
function violation(rng: Rng): Episode {
  const text = (s: string, extra: Partial<Parameters<typeof frame>[0]> = {}) => frame({ opcode: OP.text, payload: s, ...extra });
  const bad = Buffer.from(pick(rng, BAD_UTF8));
  switch (int(rng, 0, 16)) {
    case 0: {
      const opcode = pick(rng, [3, 4, 5, 6, 7, 0xb, 0xc, 0xd, 0xe, 0xf]);
      return { name: `reserved opcode 0x${opcode.toString(16)}`, frames: [frame({ opcode, payload: randomAscii(rng, int(rng, 0, 20)) })], expect: 1002 };
    }
    case 1: {
      const rsv = int(rng, 1, 7);
      return { name: `RSV bits ${rsv.toString(2).padStart(3, '0')}`, frames: [text('{"type":"join","room":"lobby"}', { rsv })], expect: 1002 };
    }
    case 2:
      return {
        name: 'control frame over 125 bytes',
        frames: [frame({ opcode: pick(rng, [OP.ping, OP.pong, OP.close]), payload: Buffer.alloc(int(rng, 126, 400), 0x61) })],
        expect: 1002,
      };
    case 3:
      return {
        name: 'fragmented control frame',
        frames: [frame({ opcode: pick(rng, [OP.ping, OP.pong]), payload: 'a', fin: false }), frame({ opcode: OP.continuation, payload: 'b' })],
        expect: 1002,
      };
    case 4:
      return {
        name: 'continuation with no start',
        frames: [frame({ opcode: OP.continuation, payload: '{"type":"join","room":"lobby"}', fin: rng() < 0.5 })],
        expect: 1002,
      };
    case 5:
      return {
        name: 'new data frame inside a fragmented message',
        frames: [text('{"type":', { fin: false }), frame({ opcode: pick(rng, [OP.text, OP.binary]), payload: '"join"}' })],
        expect: 1002,
      };
    case 6: {
      const code = pick(rng, [0, 1, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535]);
      return { name: `close with reserved code ${code}`, frames: [frame({ opcode: OP.close, payload: closePayload(code, 'bye') })], expect: 1002 };
    }
    case 7:
      return { name: 'close with a 1-byte payload', frames: [frame({ opcode: OP.close, payload: Buffer.from([0x03]) })], expect: 1002 };
    case 8:
      return { name: 'close reason with invalid UTF-8', frames: [frame({ opcode: OP.close, payload: closePayload(1000, bad) })], expect: 1007 };
    case 9:
      return { name: 'unmasked client frame', frames: [text('{"type":"join","room":"lobby"}', { mask: false })], expect: 1002 };
    case 10:
      return {
        name: 'binary frame',
        frames: [frame({ opcode: OP.binary, payload: rng() < 0.5 ? '{"type":"join","room":"lobby"}' : Buffer.from([0, 1, 2, 255]) })],
        expect: 1003,
      };
    case 11: {
      const split = rng() < 0.5;
      const payload = Buffer.concat([Buffer.from('{"type":"send","room":"lobby","text":"'), bad, Buffer.from('"}')]);
      return {
        name: split ? 'invalid UTF-8 across fragments' : 'invalid UTF-8 in a text frame',
        frames: split
          ? [
              frame({ opcode: OP.text, payload: payload.subarray(0, 38), fin: false }),
              frame({ opcode: OP.ping, payload: 'p' }),
              frame({ opcode: OP.continuation, payload: payload.subarray(38) }),
            ]
          : [frame({ opcode: OP.text, payload })],
        expect: 1007,
      };
    }
    case 12: {
      const length = pick(rng, [65_537n, 1n << 20n, 1n << 32n, (1n << 53n) - 1n, 1n << 53n, 1n << 63n]);
      return { name: `declared length ${length}`, frames: [frame({ opcode: pick(rng, [OP.text, OP.binary]), declaredLength: length })], expect: 1009 };
    }
    case 13: {
      // fragments that add up to more than maxPayload
      const piece = Buffer.alloc(40_000, 0x61);
      return {
        name: 'fragmented message over maxPayload',
        frames: [frame({ opcode: OP.text, payload: piece, fin: false }), frame({ opcode: OP.continuation, payload: piece })],
        expect: 1009,
      };
    }
    case 15: {
      // Ping flood: ws terminates a peer once 60 pongs are pending (no close frame: it is cut).
      const count = int(rng, 200, 400);
      return {
        name: `ping flood (${count} pings in one write)`,
        frames: Array.from({ length: count }, () => frame({ opcode: OP.ping, payload: 'flood' })),
        expect: 1006,
      };
    }
    default: {
      // A clean close, then more frames (valid, invalid and garbage): all ignored; the server echoes our code.
      const code = pick(rng, [1000, 1001, 3000, 4000, 4999]);
      return {
        name: 'frames after close',
        frames: [
          frame({ opcode: OP.close, payload: closePayload(code, 'done') }),
          text('{"type":"join","room":"lobby"}'),
          text('not json'),
          frame({ opcode: OP.ping, payload: 'late' }),
          frame({ opcode: 5, payload: 'x' }),
          Buffer.from(randomAscii(rng, 20)),
        ],
        expect: code,
        afterClose: true,
      };
    }
  }
}

/** Splits a message into fragments with pings between them; the server must reassemble it (and pong). */
function fragmented(rng: Rng, message: string): { frames: Buffer[]; pings: number } {
  const bytes = Buffer.from(message);
  const parts = Math.min(int(rng, 2, 5), Math.max(1, bytes.length));
  const frames: Buffer[] = [];
  let pings = 0;
  for (let i = 0; i < parts; i++) {
    const start = Math.floor((i * bytes.length) / parts);
    const end = Math.floor(((i + 1) * bytes.length) / parts);
    frames.push(frame({ opcode: i === 0 ? OP.text : OP.continuation, payload: bytes.subarray(start, end), fin: i === parts - 1 }));
    if (i < parts - 1 && rng() < 0.7) {
      frames.push(frame({ opcode: OP.ping, payload: `f${i}` }));
      pings += 1;
    }
  }
  return { frames, pings };
}

type Totals = {
  framesSent: number;
  messagesSent: number;
  errorFrames: number;
  errorCodes: Map<string, number>;
  closes: Map<string, number>;
  pongs: number;
  pingsSent: number;
  episodes: number;
  batches: number;
  mismatches: string[];
};

function bump(map: Map<string, number>, key: string, by = 1): void {
  map.set(key, (map.get(key) ?? 0) + by);
}

describe('protocol fuzzing (child-process server, seeded)', () => {
  let child: ChildServer;
  let observerCookie: string;
  let observer: Observer;
  const cookies: string[] = [];

  before(async () => {
    child = await spawnServer(FUZZ_ENV);
    observerCookie = await signUp(child.server, 'observer');
    for (let i = 1; i <= WORKERS; i++) cookies.push(await signUp(child.server, `fuzz${i}`));
    const owner = await joined(child.server, observerCookie);
    owner.send({ type: 'create', room: 'vault' }); // private, owned by observer: "a room the user is not in"
    await owner.next('room_added');
    owner.ws.close();
    // The well-behaved user runs in its own process: its latency is the server's, not this busy process's.
    observer = await startObserver(child.server, observerCookie, await signUp(child.server, 'listener'), OBSERVER_EVERY_MS);
  });

  after(async () => {
    await observer?.close();
    await child?.stop();
  });

  test(`≥ 100k frames from ${WORKERS} users: no crash, no 1011, own close codes, an error frame per invalid message, observer p99 ≤ 250 ms, RSS plateau`, async (t) => {
    const totals: Totals = {
      framesSent: 0,
      messagesSent: 0,
      errorFrames: 0,
      errorCodes: new Map(),
      closes: new Map(),
      pongs: 0,
      pingsSent: 0,
      episodes: 0,
      batches: 0,
      mismatches: [],
    };
    const started = Date.now();
    let stop = false;
    const finished = () => stop || totals.framesSent >= TARGET_FRAMES || Date.now() - started > MAX_RUN_MS;

    // Memory: the server process's RSS every 250 ms.
    const rss: Array<{ at: number; mb: number }> = [];
    const sampler = setInterval(() => rss.push({ at: Date.now() - started, mb: child.rssMb() }), 250);

    // The well-behaved user: one message every 100 ms, timed from send to the listener's receipt.
    observer.start();

    async function worker(index: number): Promise<void> {
      const rng = mulberry32(SEED + index * 7919);
      const cookie = cookies[index]!;
      const ws = await RawWs.open(child.server, cookie);
      let sentinels = 0;
      while (!finished()) {
        // A batch of invalid messages, some fragmented around pings, then a sentinel.
        const chunks: Buffer[] = [];
        let pings = 0;
        for (let i = 0; i < BATCH; i++) {
          const message = invalidMessage(rng);
          const roll = rng();
          // ws (≥ 8.18) terminates a peer with more than 60 pings awaiting their pong (ping
          // flood); a batch stays well under that, and the flood itself is an episode below.
          if (roll < 0.08 && pings < MAX_PINGS_PER_BATCH) {
            const split = fragmented(rng, message);
            chunks.push(...split.frames);
            pings += split.pings;
          } else if (roll < 0.1 && pings < MAX_PINGS_PER_BATCH) {
            chunks.push(frame({ opcode: OP.ping, payload: randomAscii(rng, int(rng, 0, 125)) }), frame({ opcode: OP.text, payload: message }));
            pings += 1;
          } else if (roll < 0.11) {
            chunks.push(frame({ opcode: OP.pong, payload: 'unsolicited' }), frame({ opcode: OP.text, payload: message }));
          } else {
            chunks.push(frame({ opcode: OP.text, payload: message }));
          }
        }
        chunks.push(frame({ opcode: OP.text, payload: '{"type":"history","room":"lobby","before":1}' }));
        const pongsBefore = ws.pongs.length;
        ws.write(Buffer.concat(chunks));
        totals.framesSent += chunks.length;
        totals.messagesSent += BATCH + 1;
        totals.pingsSent += pings;
        sentinels += 1;
        const replies: string[] = [];
        let history = 0;
        await ws.until(
          () => {
            for (const text of ws.texts.splice(0)) {
              replies.push(text);
              if (text.startsWith('{"type":"history"')) history += 1;
            }
            return history >= 1;
          },
          20_000,
          `worker ${index} batch ${sentinels}: the sentinel reply`,
        );
        let errors = 0;
        for (const text of replies) {
          const reply = JSON.parse(text) as { type: string; code?: string };
          if (reply.type === 'error') {
            errors += 1;
            bump(totals.errorCodes, reply.code ?? '?');
          }
        }
        totals.errorFrames += errors;
        totals.pongs += ws.pongs.length - pongsBefore;
        totals.batches += 1;
        if (errors !== BATCH) totals.mismatches.push(`worker ${index} batch ${sentinels}: ${errors} error frames for ${BATCH} invalid messages`);
        if (ws.pongs.length - pongsBefore !== pings)
          totals.mismatches.push(`worker ${index} batch ${sentinels}: ${ws.pongs.length - pongsBefore} pongs for ${pings} pings`);
        if (ws.ended) {
          totals.mismatches.push(`worker ${index}: the message socket was closed (${ws.closeCode})`);
          break;
        }

        const due = started + (totals.framesSent / TARGET_FRAMES) * PACE_MS;
        if (due > Date.now()) await sleep(due - Date.now());

        // Protocol violations, each on its own fresh socket.
        if (sentinels % EPISODE_EVERY === 0) {
          await Promise.all(
            Array.from({ length: EPISODES_PER_ROUND }, async () => {
              const episode = violation(rng);
              const victim = await RawWs.open(child.server, cookie);
              victim.write(Buffer.concat(episode.frames));
              totals.framesSent += episode.frames.length;
              totals.episodes += 1;
              const code = await victim.closed(10_000).catch(() => -1);
              victim.destroy();
              bump(totals.closes, String(code));
              if (code !== episode.expect) totals.mismatches.push(`${episode.name}: closed ${code}, expected ${episode.expect}`);
              if (episode.afterClose && victim.texts.some((t) => t.startsWith('{"type":"error"'))) {
                totals.mismatches.push(`${episode.name}: a frame after the close was processed`);
              }
            }),
          );
        }
      }
      ws.destroy();
    }

    try {
      await Promise.all(Array.from({ length: WORKERS }, (_, i) => worker(i)));
    } catch (error) {
      await sleep(500); // let the server's last log lines arrive
      const notable = child.output.filter((l) => /ws_dropped|heartbeat|server_error|"code":1011/.test(l));
      t.diagnostic(`server log (notable): ${notable.slice(-20).join('\n')}`);
      throw error;
    } finally {
      stop = true;
      clearInterval(sampler);
    }
    const elapsed = Date.now() - started;
    const { sent: observerSent, latencies } = await observer.stop();

    const third = rss.find((s) => s.at >= elapsed / 3) ?? rss[0]!;
    const lastTwoThirds = rss.filter((s) => s.at >= third.at);
    const peakLate = Math.max(...lastTwoThirds.map((s) => s.mb));
    const end = rss[rss.length - 1]!;
    const p50 = percentile(latencies, 50);
    const p99 = percentile(latencies, 99);
    const max = Math.max(...latencies);

    t.diagnostic(`seed ${SEED} (FUZZ_SEED to replay); ${elapsed} ms`);
    t.diagnostic(
      `frames sent ${totals.framesSent} (${totals.messagesSent} messages in ${totals.batches} batches, ${totals.pingsSent} pings, ${totals.episodes} violation sockets)`,
    );
    t.diagnostic(`error frames ${totals.errorFrames}: ${[...totals.errorCodes].map(([k, v]) => `${k} ${v}`).join(', ')}; pongs ${totals.pongs}`);
    t.diagnostic(
      `closes by code: ${[...totals.closes]
        .sort()
        .map(([k, v]) => `${k}×${v}`)
        .join(', ')}`,
    );
    t.diagnostic(`observer: ${observerSent} sent, ${latencies.length} delivered, p50 ${p50} ms, p99 ${p99} ms, max ${max} ms`);
    t.diagnostic(
      `server RSS: start ${rss[0]?.mb.toFixed(1)} MB, at a third (${third.at} ms) ${third.mb.toFixed(1)} MB, peak after ${peakLate.toFixed(1)} MB, end ${end.mb.toFixed(1)} MB`,
    );

    // Never crashed, never 1011, nothing the server could not handle.
    assert.equal(child.proc.exitCode, null, 'the server process is alive');
    assert.equal(child.proc.signalCode, null, 'the server process is alive');
    assert.equal(totals.closes.get('1011') ?? 0, 0, 'no close 1011');
    assert.equal(totals.errorCodes.get('internal') ?? 0, 0, 'no internal errors');
    assert.equal(totals.errorCodes.get('rate_limited') ?? 0, 0, 'the fuzz reached validation, not the rate limiter');
    assert.deepEqual(totals.mismatches.slice(0, 20), [], `${totals.mismatches.length} mismatches`);
    assert.ok(totals.framesSent >= 100_000, `only ${totals.framesSent} frames in ${elapsed} ms`);
    assert.equal(totals.errorFrames, totals.batches * BATCH, 'one error frame per invalid message');
    for (const code of ['1002', '1003', '1007', '1009']) assert.ok((totals.closes.get(code) ?? 0) > 0, `at least one close ${code}`);
    assert.equal(child.output.filter((l) => l.includes('"server_error"')).length, 0, 'no server_error logged');
    // The well-behaved user: every message delivered, p99 ≤ 250 ms.
    assert.equal(latencies.length, observerSent, `every observer message delivered (${observerSent - latencies.length} missing)`);
    assert.ok(p99 <= 250, `observer p99 ${p99} ms > 250 ms`);
    // Memory plateaus.
    assert.ok(peakLate - third.mb <= 100, `RSS grew ${(peakLate - third.mb).toFixed(1)} MB over the last two thirds`);
  });

  test('after the fuzz the server still serves: a new socket of a fuzzing user chats', async () => {
    const client = await joined(child.server, cookies[0]!);
    client.send({ type: 'send', room: 'lobby', text: 'after the storm', clientId: 'after' });
    assert.equal((await client.next('ack')).clientId, 'after');
    client.ws.close();
    assert.equal(child.output.filter((l) => l.includes('"server_error"')).length, 0);
    assert.equal(child.proc.exitCode, null);
  });

  // ASVS 16.2.5: the server process's whole stdout/stderr during the fuzz holds no secret.
  test('no cookie value, session id, password or message body in anything the server wrote', () => {
    const everything = child.output.join('\n');
    assert.ok(child.output.length > 1000, `the server logged (${child.output.length} lines)`);
    for (const cookie of [observerCookie, ...cookies]) {
      const value = decodeURIComponent(cookie.slice(cookie.indexOf('=') + 1)); // s:<sid>.<signature>
      const sid = value.slice(2, value.lastIndexOf('.'));
      assert.ok(sid.length >= 20);
      assert.ok(!everything.includes(sid), 'a session id was logged');
      assert.ok(!everything.includes(cookie.slice(cookie.indexOf('=') + 1)), 'a cookie value was logged');
    }
    assert.ok(!everything.includes(PASSWORD), 'a password was logged');
    assert.ok(!/observer \d+ says/.test(everything), 'a message body was logged');
    assert.ok(!everything.includes('after the storm'), 'a message body was logged');
  });
});
