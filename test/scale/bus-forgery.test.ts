// requires: redis
// Whoever can publish to Redis is not trusted to speak for an instance. A client connected
// straight to Redis (as a misconfigured ACL, an exposed port or a compromised cache would
// allow) publishes forged room messages, revocations and garbage on Parley's channels: none
// reaches a socket, none closes one, and the burst is logged once. Only an envelope sealed
// with the key derived from SESSION_SECRET, with a valid shape, is delivered — the test
// seals one itself, from the documented format, to show the path it guards is live.
// Decision: docs/decisions/013-bus-loss.md. Run: npx node --test test/scale/bus-forgery.test.ts
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { createClient } from '@redis/client';
import { joined, signUp, sleep, startServer, type Client, type TestServer } from '../helpers/server.ts';
import { startRedis, type RedisService } from '../helpers/services.ts';

const SECRET = crypto.randomBytes(32).toString('hex');
const FOREIGN_INSTANCE = crypto.randomUUID();

let seq = 0;

/** docs/scaling.md, "The bus": v1.<HMAC-SHA256(HKDF(secret), channel \n body), base64url>.<body>; the body names the sender, its sequence number and its send time. */
function sealed(channel: string, body: unknown, secret = SECRET): string {
  const key = Buffer.from(crypto.hkdfSync('sha256', secret, 'parley', 'parley cluster bus envelope v1', 32));
  const json = JSON.stringify({ from: FOREIGN_INSTANCE, seq: ++seq, at: Date.now(), body });
  return `v1.${crypto.createHmac('sha256', key).update(`${channel}\n${json}`).digest('base64url')}.${json}`;
}

const message = (id: number, fields: Record<string, unknown> = {}) => ({
  type: 'message',
  room: 'lobby',
  id,
  user: 'alice',
  html: `message ${id}`,
  ts: Date.now(),
  ...fields,
});

describe('forged bus messages (published straight to Redis)', () => {
  let redis: RedisService;
  let server: TestServer;
  let publisher: ReturnType<typeof createClient>;
  let bob: Client;

  before(async () => {
    redis = await startRedis();
    server = await startServer({ env: { REDIS_URL: redis.url, SESSION_SECRET: SECRET } });
    publisher = createClient({ url: redis.url });
    await publisher.connect();
    await signUp(server, 'alice');
    bob = await joined(server, await signUp(server, 'bob'));
  });

  after(async () => {
    bob?.ws.close();
    publisher?.destroy();
    await server?.close();
    await redis?.stop();
  });

  test('unsealed, wrongly sealed and malformed envelopes are dropped: no message delivered, no socket closed, one log line per burst', async () => {
    const forged: Array<[string, string]> = [
      // Today's shape, unsealed: an injected message with markup, a spoofed author and a future id.
      ['parley:rooms', JSON.stringify({ from: 'x', room: 'lobby', frame: message(900_001, { html: '<img src=x onerror=alert(1)>' }) })],
      // A revocation that would close every socket of bob's.
      ['parley:revocations', JSON.stringify({ from: 'x', notice: { kind: 'user', user: 'bob', reason: 'password_changed' } })],
      ['parley:membership', JSON.stringify({ from: 'x', user: 'bob' })],
      // The right format, the wrong key.
      ['parley:rooms', sealed('parley:rooms', message(900_002), crypto.randomBytes(32).toString('hex'))],
      ['parley:revocations', sealed('parley:revocations', { kind: 'user', user: 'bob', reason: 'password_changed' }, 'not the secret'.repeat(4))],
      // Sealed for another channel: a MAC does not travel between channels.
      ['parley:rooms', sealed('parley:membership', message(900_003))],
      // The right key, but not a valid body: each is dropped, never repaired.
      ['parley:rooms', sealed('parley:rooms', message(900_004, { extra: true }))],
      ['parley:rooms', sealed('parley:rooms', message(900_005, { user: 'Not A Name' }))],
      ['parley:rooms', sealed('parley:rooms', message(-1))],
      ['parley:rooms', sealed('parley:rooms', message(900_006, { ts: 'now' }))],
      ['parley:rooms', sealed('parley:rooms', message(900_007, { room: '__proto__' }))],
      ['parley:revocations', sealed('parley:revocations', { kind: 'user', user: 'bob', reason: 'password_changed', extra: 1 })],
      // Garbage, in a burst.
      ...Array.from({ length: 40 }, (_, i): [string, string] => ['parley:rooms', i % 2 ? 'v1.' + 'A'.repeat(43) + '.{}' : `garbage ${i}`]),
    ];
    for (const [channel, payload] of forged) await publisher.publish(channel, payload);
    // A correctly sealed, valid message from "another instance" is delivered: the path is live.
    await publisher.publish('parley:rooms', sealed('parley:rooms', message(900_100)));
    const delivered = await bob.next('message', 5000);
    await sleep(300);
    assert.equal(delivered.id, 900_100);
    assert.equal(delivered.html, 'message 900100');
    const messages = bob.frames.filter((f) => f.type === 'message');
    assert.deepEqual(
      messages.map((m) => m.type === 'message' && m.id),
      [900_100],
      'only the sealed, valid message was delivered',
    );
    assert.equal(bob.ws.readyState, bob.ws.OPEN, 'a forged revocation closed the socket');
    const bad = server.logs.filter((line) => line.includes('"reason":"bus_bad_message"'));
    assert.equal(bad.filter((line) => line.includes('parley:rooms')).length, 1, `one log line for the burst on parley:rooms: ${bad.join('\n')}`);
    assert.ok(bad.some((line) => line.includes('parley:revocations')));
  });
});
