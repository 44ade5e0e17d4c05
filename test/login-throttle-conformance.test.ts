// requires: redis
// One behaviour, two engines: the same cases run against the in-memory login throttle
// (server/security/login-throttle.ts) and the Redis one (server/security/redis-login-throttle.ts,
// against a real redis-server), with short windows so that forgetting can be watched.
// Run: npx node --test test/login-throttle-conformance.test.ts
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createClient } from '@redis/client';
import { loadConfig } from '../server/config.ts';
import { LoginThrottle, type LoginAttempt, type LoginGuard, type LoginVerdict } from '../server/security/login-throttle.ts';
import { RedisLoginThrottle } from '../server/security/redis-login-throttle.ts';
import { sleep } from './helpers/server.ts';
import { startRedis, type RedisService } from './helpers/services.ts';

const config = loadConfig(
  {
    LOGIN_ACCOUNT_FREE_FAILURES: '3',
    LOGIN_ACCOUNT_MAX_BACKOFF_SECONDS: '1', // so the quiet period that forgets failures is 2 s
    LOGIN_ADDRESS_FAILURES: '6',
    LOGIN_ADDRESS_WINDOW_SECONDS: '60',
    LOGIN_ACCOUNT_UNTRUSTED_FAILURES: '8',
    LOGIN_ACCOUNT_UNTRUSTED_WINDOW_SECONDS: '60',
    LOGIN_DEVICE_FAILURES: '3',
    LOGIN_DEVICE_WINDOW_SECONDS: '60',
  },
  [],
).login;

type Engine = { name: string; make: () => Promise<LoginGuard>; stop: () => Promise<void> };

let redis: RedisService | undefined;
let client: ReturnType<typeof createClient> | undefined;
const engines: Engine[] = [
  { name: 'memory', make: async () => new LoginThrottle(config), stop: async () => {} },
  {
    name: 'redis',
    make: async () => {
      redis ??= await startRedis();
      if (!client) {
        client = createClient({ url: redis.url });
        await client.connect();
      }
      await client.flushAll();
      return new RedisLoginThrottle(client, config);
    },
    stop: async () => {
      await client?.close();
      await redis?.stop();
    },
  },
];

/** An attempt that must be allowed, then a wrong password. */
async function fail(guard: LoginGuard, attempt: LoginAttempt): Promise<LoginVerdict> {
  const verdict = await guard.attempt(attempt);
  assert.equal(verdict.waitMs, 0, `expected ${JSON.stringify(attempt)} to be allowed`);
  await guard.settle(attempt, verdict, false);
  return verdict;
}

/** The wait an attempt meets now; an allowed probe is settled as a right password, so it leaves the pair clean. */
async function probe(guard: LoginGuard, attempt: LoginAttempt): Promise<LoginVerdict> {
  const verdict = await guard.attempt(attempt);
  if (verdict.waitMs === 0) await guard.settle(attempt, verdict, true);
  return verdict;
}

for (const engine of engines) {
  describe(`login throttle conformance: ${engine.name}`, () => {
    let guard: LoginGuard;
    before(async () => {
      guard = await engine.make();
    });
    after(() => engine.stop());

    test('free failures, then a doubling lock for that (account, address) only', async () => {
      for (let i = 0; i < 3; i++) await fail(guard, { account: 'victim1', address: '203.0.113.1' });
      const locked = await guard.attempt({ account: 'victim1', address: '203.0.113.1' });
      assert.ok(locked.waitMs > 0 && locked.waitMs <= 1000, `first lock is 1 s, got ${locked.waitMs}`);
      assert.equal(locked.trusted, false);
      assert.equal((await probe(guard, { account: 'victim1', address: '198.51.100.1' })).waitMs, 0, 'the same account from another address');
      assert.equal((await probe(guard, { account: 'bystander1', address: '203.0.113.1' })).waitMs, 0, 'another account from the same address');
    });

    test('a right password clears the (account, address) count', async () => {
      const pair = { account: 'victim2', address: '203.0.113.2' };
      await fail(guard, pair);
      await fail(guard, pair);
      await probe(guard, pair); // right password
      await fail(guard, pair);
      await fail(guard, pair);
      assert.equal((await guard.attempt(pair)).waitMs, 0, 'two failures after a success are still free');
    });

    test('parallel attempts on one (account, address): only the free ones pass the check', async () => {
      const pair = { account: 'victim3', address: '203.0.113.3' };
      const verdicts = await Promise.all(Array.from({ length: 12 }, () => guard.attempt(pair)));
      assert.equal(verdicts.filter((v) => v.waitMs === 0).length, 3, JSON.stringify(verdicts));
    });

    test('per address: failures across accounts close the address for untrusted attempts; another address is open', async () => {
      for (let i = 0; i < 6; i++) await fail(guard, { account: `sprayed4-${i}`, address: '203.0.113.4' });
      const refused = await guard.attempt({ account: 'sprayed4-x', address: '203.0.113.4' });
      assert.ok(refused.waitMs > 1000 && refused.waitMs <= 60_000, String(refused.waitMs));
      assert.equal((await probe(guard, { account: 'sprayed4-x', address: '198.51.100.4' })).waitMs, 0);
    });

    test('per address: successes never count, not even 30 in flight at once (a workshop behind NAT)', async () => {
      const attempts = Array.from({ length: 30 }, (_, i) => ({ account: `nat5-${i}`, address: '192.0.2.5' }));
      const verdicts = await Promise.all(attempts.map((a) => guard.attempt(a)));
      assert.deepEqual(
        verdicts.map((v) => v.waitMs),
        attempts.map(() => 0),
      );
      await Promise.all(attempts.map((a, i) => guard.settle(a, verdicts[i]!, true)));
      // Five real failures, under the budget of 6: still open.
      for (let i = 0; i < 5; i++) await fail(guard, { account: `nat5-typo-${i}`, address: '192.0.2.5' });
      assert.equal((await probe(guard, { account: 'nat5-late', address: '192.0.2.5' })).waitMs, 0);
    });

    test('per account backstop: failures from many addresses close the account to new browsers, not to a known one', async () => {
      for (let i = 0; i < 8; i++) await fail(guard, { account: 'victim6', address: `203.0.113.${60 + i}` });
      const fresh = await guard.attempt({ account: 'victim6', address: '198.51.100.6' });
      assert.ok(fresh.waitMs > 1000, `a new address meets the backstop: ${fresh.waitMs}`);
      const known = await guard.attempt({ account: 'victim6', address: '198.51.100.6', device: 'device-6' });
      assert.deepEqual(known, { waitMs: 0, trusted: true });
    });

    test('a device cookie is not subject to the account locks; after 3 failures of its own it is untrusted', async () => {
      const here = { account: 'victim7', address: '203.0.113.7' };
      for (let i = 0; i < 3; i++) await fail(guard, here);
      assert.ok((await guard.attempt(here)).waitMs > 0, 'the pair is locked');
      const device = { ...here, device: 'device-7' };
      for (let i = 0; i < 3; i++) assert.deepEqual(await fail(guard, device), { waitMs: 0, trusted: true }, `device failure ${i + 1}`);
      const distrusted = await guard.attempt(device);
      assert.equal(distrusted.trusted, false);
      assert.ok(distrusted.waitMs > 0, 'treated as an unknown browser, so the pair lock applies');
      assert.deepEqual(await guard.attempt({ ...here, device: 'device-7b' }), { waitMs: 0, trusted: true }, 'another known browser still trusted');
    });

    test('trusted failures count against neither the address nor the account', async () => {
      // 8 trusted failures of one account from one address (4 browsers × 2, each under its own limit of 3):
      // were they counted, both the address budget (6) and the account backstop (8) would be spent.
      for (let i = 0; i < 8; i++) {
        assert.equal((await fail(guard, { account: 'owner8', address: '203.0.113.8', device: `device-8-${i % 4}` })).trusted, true);
      }
      assert.equal((await probe(guard, { account: 'other8', address: '203.0.113.8' })).waitMs, 0, 'the address is open');
      assert.equal((await probe(guard, { account: 'owner8', address: '198.51.100.8' })).waitMs, 0, 'the account is open to a new browser');
    });

    test('password re-entry path: retryAfter/failed share the (account, address) count', async () => {
      for (let i = 0; i < 3; i++) {
        assert.equal(await guard.retryAfter('victim9', '203.0.113.9'), 0);
        await guard.failed('victim9', '203.0.113.9');
      }
      assert.ok((await guard.retryAfter('victim9', '203.0.113.9')) > 0);
      assert.ok((await guard.attempt({ account: 'victim9', address: '203.0.113.9' })).waitMs > 0);
    });

    test("an (account, address)'s failures are kept through the lock, then forgotten after a 2 s quiet period", async () => {
      const pair = { account: 'victim10', address: '203.0.113.10' };
      for (let i = 0; i < 3; i++) await fail(guard, pair);
      await sleep(1100); // the 1 s lock is over, the count is not
      await fail(guard, pair);
      const relocked = await guard.attempt(pair);
      assert.ok(relocked.waitMs > 0, 'the 4th failure locks at once: the count was kept');
      await sleep(2200); // quiet for longer than 2 × LOGIN_ACCOUNT_MAX_BACKOFF_SECONDS
      await fail(guard, pair);
      assert.equal((await guard.attempt(pair)).waitMs, 0, 'after the quiet period the count starts again: this failure was a free one');
    });
  });
}
