// The cluster bus over Redis pub/sub (REDIS_URL): four channels — room messages (and room
// event lines), membership changes, session revocations, presence. Each instance has a random id; it publishes with it and
// ignores what comes back with it, so its own sockets get a message exactly once (they got it
// locally, without waiting for Redis).
//
// Redis pub/sub delivers at most once. What this class adds so that nothing is silently
// missed (docs/decisions/013-bus-loss.md):
//   - the subscriber connection dropping, or going silent (no PONG within 3 PING intervals,
//     server/store/redis.ts), fires `onLost`: whatever the others published meanwhile is gone,
//     and the ws layer closes every socket (1013) so clients come back through the gate and
//     re-read their rooms and history;
//   - a publish that fails after the change it announces was committed goes to a bounded
//     outbox, sent in order as soon as the publishing connection is ready again (receivers
//     and clients treat a late or repeated message as the same message: ids, idempotent
//     revocations);
//   - every envelope is sealed with a key not stored in Redis (envelope.ts) and every body is
//     validated and rebuilt (messages.ts); anything else is dropped and logged once per burst;
//   - every envelope carries the sender's sequence number on its channel and its send time, so
//     a recording published again (by whoever can publish to Redis) cannot bring back an old
//     state: a presence notice or a room line the receiver has already passed, or one older
//     than BUS_MAX_AGE_SECONDS, is dropped. Chat messages, revocations and membership changes
//     are idempotent (message ids; a revocation revokes; a membership change makes the
//     receiver re-read) and may arrive late from the outbox, so they are not dropped for age.
import crypto from 'node:crypto';
import type { AuditLog } from '../security/audit-log.ts';
import type { RedisClient } from '../store/redis.ts';
import type { ClusterBus, PresenceNotice, RevocationNotice, RoomFrame } from './bus.ts';
import { seal, unseal, type BusKey } from './envelope.ts';
import { membershipFrom, messageFrom, parseSent, presenceFrom, revocationFrom, sentJson } from './messages.ts';

const CHANNELS = { rooms: 'parley:rooms', membership: 'parley:membership', revocations: 'parley:revocations', presence: 'parley:presence' } as const;
type Channel = (typeof CHANNELS)[keyof typeof CHANNELS];

/**
 * `outboxLimit`: envelopes kept while the publishing connection is down; past it the oldest are dropped (logged).
 * `badLogIntervalMs`: bad envelopes are logged at most once per interval per channel, with a count.
 * `maxAgeMs`: presence notices and room lines sent longer ago than this (or this far in the future) are dropped.
 */
export type RedisBusOptions = { outboxLimit: number; badLogIntervalMs: number; maxAgeMs: number };

/** What a receiver remembers of one sending instance on one channel: the highest sequence number it accepted, and when. */
type Heard = { seq: number; at: number };

export class RedisBus implements ClusterBus {
  readonly instance = crypto.randomUUID();
  readonly #pub: RedisClient;
  readonly #sub: RedisClient;
  readonly #key: BusKey;
  readonly #log: AuditLog;
  readonly #messageListeners: Array<(frame: RoomFrame) => void> = [];
  readonly #presenceListeners: Array<(notice: PresenceNotice, from: string) => void> = [];
  readonly #membershipListeners: Array<(user: string) => void> = [];
  readonly #revocationListeners: Array<(notice: RevocationNotice) => void> = [];
  readonly #lostListeners: Array<() => void> = [];
  /** Sealed envelopes whose publish failed, oldest first. */
  readonly #outbox: Array<{ channel: Channel; bodyJson: string }> = [];
  #flushing = false;
  /** The subscriber is subscribed and we have not yet told anyone it was lost. */
  #hearing = false;
  readonly #bad = new Map<Channel, { lastLog: number; dropped: number }>();
  readonly #options: RedisBusOptions;
  /** Our own last sequence number per channel. */
  readonly #seq = new Map<Channel, number>();
  /** sending instance + channel → the highest sequence number accepted from it. */
  readonly #heard = new Map<string, Heard>();
  #prunedAt = Date.now();

  constructor(pub: RedisClient, sub: RedisClient, key: BusKey, log: AuditLog, options: RedisBusOptions) {
    this.#pub = pub;
    this.#sub = sub;
    this.#key = key;
    this.#log = log;
    this.#options = options;
  }

  /** Subscribes; node-redis re-subscribes by itself before a reconnected client is ready again. */
  async start(): Promise<void> {
    // A room line (joined, invited, …) says something happened now; a chat message is the same message whenever it comes.
    await this.#sub.subscribe(CHANNELS.rooms, (raw) =>
      this.#receive(CHANNELS.rooms, raw, messageFrom, this.#messageListeners, (frame) => frame.type === 'room_event'),
    );
    await this.#sub.subscribe(CHANNELS.membership, (raw) => this.#receive(CHANNELS.membership, raw, membershipFrom, this.#membershipListeners));
    await this.#sub.subscribe(CHANNELS.revocations, (raw) => this.#receive(CHANNELS.revocations, raw, revocationFrom, this.#revocationListeners));
    await this.#sub.subscribe(CHANNELS.presence, (raw) => this.#receive(CHANNELS.presence, raw, presenceFrom, this.#presenceListeners, () => true));
    this.#hearing = true;
    // 'error' covers a reset, a refused reconnect and a PING left unanswered (redis.ts); by the
    // time it is emitted the client is no longer ready.
    const maybeLost = () => {
      if (!this.#sub.isReady) this.#lost();
    };
    this.#sub.on('error', maybeLost);
    this.#sub.on('end', maybeLost);
    this.#sub.on('reconnecting', maybeLost);
    this.#sub.on('ready', () => (this.#hearing = true));
    this.#pub.on('ready', () => void this.#flush());
  }

  get up(): boolean {
    return this.#pub.isReady && this.#sub.isReady;
  }

  publishMessage(frame: RoomFrame, json?: string): void {
    this.#publish(CHANNELS.rooms, json ?? JSON.stringify(frame));
  }

  publishMembership(user: string): void {
    this.#publish(CHANNELS.membership, JSON.stringify({ user }));
  }

  publishRevocation(notice: RevocationNotice): void {
    this.#publish(CHANNELS.revocations, JSON.stringify(notice));
  }

  publishPresence(notice: PresenceNotice): void {
    this.#publish(CHANNELS.presence, JSON.stringify(notice));
  }

  onMessage(deliver: (frame: RoomFrame) => void): void {
    this.#messageListeners.push(deliver);
  }
  onPresence(deliver: (from: string, notice: PresenceNotice) => void): void {
    this.#presenceListeners.push((notice, from) => deliver(from, notice));
  }
  onMembership(deliver: (user: string) => void): void {
    this.#membershipListeners.push(deliver);
  }
  onRevocation(deliver: (notice: RevocationNotice) => void): void {
    this.#revocationListeners.push(deliver);
  }
  onLost(listener: () => void): void {
    this.#lostListeners.push(listener);
  }

  #lost(): void {
    if (!this.#hearing) return; // once per outage
    this.#hearing = false;
    this.#log('server_error', { reason: 'bus_lost', detail: 'the subscriber connection to Redis was lost; closing sockets (1013)' });
    for (const listener of this.#lostListeners) listener();
  }

  /** `ordered`: the body states something as of its send time, so a late, repeated or out-of-order copy must not be applied. */
  #receive<T>(
    channel: Channel,
    raw: string,
    parse: (body: unknown) => T | undefined,
    listeners: Array<(value: T, from: string) => void>,
    ordered: (value: T) => boolean = () => false,
  ): void {
    const json = unseal(this.#key, channel, raw);
    const sent = json === undefined ? undefined : parseSent(json);
    const value = sent === undefined ? undefined : parse(sent.body);
    if (sent === undefined || value === undefined) return this.#dropped(channel, json === undefined ? 'bad_mac' : 'bad_shape');
    if (sent.from === this.instance) return;
    const now = Date.now();
    const key = `${sent.from} ${channel}`;
    const heard = this.#heard.get(key);
    if (ordered(value)) {
      // Replay protection: never a sequence number already passed, never older than maxAgeMs.
      // Together they cover a recording of an instance we no longer remember: it is too old.
      if (heard !== undefined && sent.seq <= heard.seq) return this.#dropped(channel, 'replayed');
      if (Math.abs(now - sent.at) > this.#options.maxAgeMs) return this.#dropped(channel, 'stale');
    }
    if (heard === undefined || sent.seq > heard.seq) this.#heard.set(key, { seq: sent.seq, at: now });
    this.#prune(now);
    for (const deliver of listeners) deliver(value, sent.from);
  }

  /**
   * Forgets instances not heard from for 2 × maxAgeMs (an instance gets a new id each start,
   * so this map would otherwise grow with every restart): whatever they sent before is
   * older than maxAgeMs by then, and dropped for that.
   */
  #prune(now: number): void {
    if (now - this.#prunedAt < this.#options.maxAgeMs) return;
    this.#prunedAt = now;
    for (const [key, heard] of this.#heard) if (now - heard.at > 2 * this.#options.maxAgeMs) this.#heard.delete(key);
  }

  /** Logged once per burst: a flood of forged envelopes must not become a flood of log lines. */
  #dropped(channel: Channel, why: string): void {
    const now = Date.now();
    const state = this.#bad.get(channel) ?? { lastLog: 0, dropped: 0 };
    state.dropped += 1;
    if (now - state.lastLog >= this.#options.badLogIntervalMs) {
      this.#log('server_error', { reason: 'bus_bad_message', detail: `${channel}: ${why}`, count: state.dropped });
      state.lastLog = now;
      state.dropped = 0;
    }
    this.#bad.set(channel, state);
  }

  #publish(channel: Channel, bodyJson: string): void {
    if (this.#outbox.length > 0 || !this.#pub.isReady) return this.#keep(channel, bodyJson);
    this.#pub.publish(channel, this.#sealNow(channel, bodyJson)).catch(() => this.#keep(channel, bodyJson));
  }

  /**
   * Sealed when it leaves, not when it was made: a notice that waited in the outbox (or whose first
   * publish failed) gets the next sequence number and the time it really went, so the receivers'
   * replay check does not take it for a recording.
   */
  #sealNow(channel: Channel, bodyJson: string): string {
    const seq = (this.#seq.get(channel) ?? 0) + 1;
    this.#seq.set(channel, seq);
    return seal(this.#key, channel, sentJson(this.instance, seq, Date.now(), bodyJson));
  }

  /**
   * A change already committed (a message, a removal, a logout) whose notice did not leave:
   * keep it for when the connection is back, so the other instances do not silently miss it.
   */
  #keep(channel: Channel, bodyJson: string): void {
    if (this.#outbox.length >= this.#options.outboxLimit) {
      this.#outbox.shift();
      this.#log('server_error', { reason: 'bus_outbox_full', detail: `oldest envelope dropped (limit ${this.#options.outboxLimit})` });
    }
    this.#outbox.push({ channel, bodyJson });
    if (this.#pub.isReady) void this.#flush();
  }

  /** In order, one at a time; stops at the first failure and waits for the next 'ready'. */
  async #flush(): Promise<void> {
    if (this.#flushing) return;
    this.#flushing = true;
    try {
      while (this.#outbox.length > 0 && this.#pub.isReady) {
        const { channel, bodyJson } = this.#outbox[0]!;
        try {
          await this.#pub.publish(channel, this.#sealNow(channel, bodyJson));
        } catch {
          return;
        }
        this.#outbox.shift();
      }
    } finally {
      this.#flushing = false;
    }
  }
}
