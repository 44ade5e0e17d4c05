// requires: redis, postgres
// The lockout rules across instances (REDIS_URL + DATABASE_URL): a device cookie issued by A
// vouches for its browser on B (one SESSION_SECRET, one derived key), failures spread over A and
// B count once against the (account, address), and the owner from a new address is not locked.
// Run: npx node --test test/scale/login-lockout-shared.test.ts
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { PASSWORD, register, request, type Reply } from '../helpers/server.ts';
import { freePort, spawnParley, startPostgres, startRedis, type ParleyProcess, type PostgresService, type RedisService } from '../helpers/services.ts';

const WRONG = 'not the right passphrase at all';

function loginFrom(server: ParleyProcess, address: string, password: string, cookie?: string): Promise<Reply> {
  return request(server, 'POST', '/api/login', {
    body: { username: 'erin', password },
    headers: { 'x-forwarded-for': address },
    ...(cookie ? { cookie } : {}),
  });
}

/** The device cookie a login set ('' without one: then the browser is an unknown one below). */
function deviceCookie(reply: Reply): string {
  assert.equal(reply.status, 200, reply.text);
  const lines = reply.headers['set-cookie'] ?? [];
  return (Array.isArray(lines) ? lines : [lines]).find((l) => l.startsWith('__Host-parley.device='))?.split(';')[0] ?? '';
}

describe('login lockout shared by two instances (one Redis, one PostgreSQL)', () => {
  let redis: RedisService;
  let postgres: PostgresService;
  let a: ParleyProcess;
  let b: ParleyProcess;
  let known: string;

  before(async () => {
    [redis, postgres] = await Promise.all([startRedis(), startPostgres()]);
    const [portA, portB] = [await freePort(), await freePort()];
    const env = {
      REDIS_URL: redis.url,
      DATABASE_URL: postgres.url,
      SESSION_SECRET: crypto.randomBytes(32).toString('hex'),
      APP_ORIGIN: `https://localhost:${portA},https://localhost:${portB}`,
      TRUST_PROXY: 'loopback',
      LOGIN_ACCOUNT_FREE_FAILURES: '3',
    };
    a = await spawnParley({ port: portA, env });
    b = await spawnParley({ port: portB, env });
    await register(a, 'erin');
    known = deviceCookie(await loginFrom(a, '198.51.100.30', PASSWORD));
    // Three failures from one address, spread over both instances: the (account, address) is locked on both.
    for (const server of [a, b, a]) assert.equal((await loginFrom(server, '203.0.113.30', WRONG)).status, 401);
  });
  after(async () => {
    await Promise.all([a?.close(), b?.close()]);
    await redis?.stop();
    await postgres?.destroy();
  });

  test("the right password from the guesser's address without a device cookie is 429 on B", async () => {
    const reply = await loginFrom(b, '203.0.113.30', PASSWORD);
    assert.equal(reply.status, 429, reply.text);
  });

  test('the device cookie issued by A lets its browser in on B, even from that address', async () => {
    assert.equal((await loginFrom(b, '203.0.113.30', PASSWORD, known)).status, 200);
  });

  test('a new address without a device cookie gets in on B', async () => {
    assert.equal((await loginFrom(b, '192.0.2.30', PASSWORD)).status, 200);
  });
});
