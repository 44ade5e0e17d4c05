// Tests for server/security/audit-log.ts and server/security/client-address.ts: security
// events are logged as one JSON line each, and no secret (cookie, session id, password,
// message text) ever reaches a log line. Run: npx node --test test/logging.test.ts
import { SESSION_COOKIE } from '../server/http/session.ts';
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, joined, register, request, sessionCookie, startServer, type Client, type TestServer } from './helpers/server.ts';

const FIRST_PASSWORD = 'first-secret-passphrase-ab12cd';
const SECOND_PASSWORD = 'second-secret-passphrase-ef34gh';
const WRONG_PASSWORD = 'wrong-secret-passphrase-ij56kl';
const MESSAGE_MARKER = 'msg-marker-3c5e7a9b1d-do-not-log';
const FORGED_COOKIE = `${SESSION_COOKIE}=s%3AforgedSessionId0123456789abcdef.forgedSignatureXYZ`;
const ISO_TIMESTAMP = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

type LogRecord = { ts: string; event: string; [key: string]: unknown };

function parsed(lines: string[]): LogRecord[] {
  return lines.map((line) => JSON.parse(line) as LogRecord);
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  return Promise.race([promise, new Promise<T>((_, reject) => setTimeout(() => reject(new Error(`timed out: ${what}`)), ms).unref())]);
}

// ASVS 16.2.1 / 16.2.5 / 16.3.x: security events logged; credentials, session ids and message content never logged
describe('audit log over a full session (register → … → logout)', () => {
  let server: TestServer;
  let cookie: string;
  let renewed = '';
  let captured = '';
  const secrets: Record<string, string> = {};

  before(async () => {
    server = await startServer();
    // Capture anything the server process writes to stdout/stderr during the flow too.
    const originalOut = process.stdout.write.bind(process.stdout);
    const originalErr = process.stderr.write.bind(process.stderr);
    const capture =
      (original: typeof originalOut): typeof originalOut =>
      (chunk: unknown, ...rest: unknown[]) => {
        captured += typeof chunk === 'string' ? chunk : Buffer.from(chunk as Uint8Array).toString('utf8');
        return (original as (...args: unknown[]) => boolean)(chunk, ...rest);
      };
    process.stdout.write = capture(originalOut);
    process.stderr.write = capture(originalErr);
    try {
      await register(server, 'alice', FIRST_PASSWORD);
      const signedIn = await request(server, 'POST', '/api/login', { body: { username: 'alice', password: FIRST_PASSWORD } });
      assert.equal(signedIn.status, 200, signedIn.text);
      cookie = sessionCookie(signedIn);

      const failed = await request(server, 'POST', '/api/login', { body: { username: 'alice', password: WRONG_PASSWORD } });
      assert.equal(failed.status, 401);

      const client: Client = await joined(server, cookie);
      client.send({ type: 'send', room: 'lobby', text: MESSAGE_MARKER, clientId: 'c1' });
      await client.next('ack');

      const refused = await connect(server, { cookie: FORGED_COOKIE });
      assert.equal('status' in refused ? refused.status : undefined, 401);

      const changed = await request(server, 'POST', '/api/password', {
        cookie,
        body: { currentPassword: FIRST_PASSWORD, newPassword: SECOND_PASSWORD },
      });
      assert.equal(changed.status, 204, changed.text);
      // The password change ends the user's live sockets: that is the ws_close event.
      await withTimeout(client.closed, 3000, 'socket close after the password change');

      // This browser stays signed in under a fresh session id (sessions are bound to the password).
      renewed = sessionCookie(changed);
      const out = await request(server, 'POST', '/api/logout', { cookie: renewed, body: {} });
      assert.equal(out.status, 204);
    } finally {
      process.stdout.write = originalOut;
      process.stderr.write = originalErr;
    }

    const value = cookie.slice(cookie.indexOf('=') + 1); // s%3A<id>.<signature>
    const decoded = decodeURIComponent(value); // s:<id>.<signature>
    const match = /^s%3A([^.]+)\.(.+)$/.exec(value);
    assert.ok(match, `unexpected cookie shape ${value}`);
    Object.assign(secrets, {
      'the session cookie value': value,
      'the decoded session cookie value': decoded,
      'the raw session id': decodeURIComponent(match[1]!),
      'the cookie signature': match[2]!,
      'the first password': FIRST_PASSWORD,
      'the second password': SECOND_PASSWORD,
      'the wrong password': WRONG_PASSWORD,
      'the message text': MESSAGE_MARKER,
      'the forged cookie sent to the upgrade': 'forgedSessionId0123456789abcdef',
      'the session cookie after the password change': renewed.slice(renewed.indexOf('=') + 1),
    });
  });
  after(() => server.close());

  test('every log line is valid JSON with an ISO ts and an event name', () => {
    assert.ok(server.logs.length > 0);
    for (const line of server.logs) {
      assert.doesNotMatch(line, /\n/);
      const record = JSON.parse(line) as LogRecord;
      assert.match(record.ts, ISO_TIMESTAMP, line);
      assert.equal(typeof record.event, 'string', line);
      assert.ok(record.event.length > 0, line);
    }
  });

  for (const name of [
    'the session cookie value',
    'the decoded session cookie value',
    'the raw session id',
    'the cookie signature',
    'the first password',
    'the second password',
    'the wrong password',
    'the message text',
    'the forged cookie sent to the upgrade',
  ]) {
    test(`${name} appears in no log line`, () => {
      const secret = secrets[name];
      assert.ok(secret && secret.length >= 8, `secret ${name} was not recorded`);
      for (const line of server.logs) assert.ok(!line.includes(secret), `${name} leaked into the log: ${line}`);
    });

    test(`${name} appears nowhere in the process's stdout/stderr during the flow`, () => {
      const secret = secrets[name]!;
      assert.ok(!captured.includes(secret), `${name} leaked into stdout/stderr`);
    });
  }

  test('the expected security events are all logged, for the right user', () => {
    const records = parsed(server.logs);
    const one = (event: string) => {
      const found = records.find((r) => r.event === event);
      assert.ok(found, `no "${event}" event in ${records.map((r) => r.event).join(', ')}`);
      return found;
    };
    assert.equal(one('login').user, 'alice');
    assert.equal(one('login_failed').user, 'alice');
    assert.equal(one('ws_open').user, 'alice');
    assert.equal(one('ws_close').user, 'alice');
    assert.equal(one('password_changed').user, 'alice');
    assert.equal(one('logout').user, 'alice');
    const refusal = one('upgrade_refused');
    assert.equal(refusal.reason, 'session');
    assert.equal(refusal.status, 401);
  });

  test('security events carry the client address', () => {
    const records = parsed(server.logs);
    for (const event of ['login', 'login_failed', 'upgrade_refused', 'ws_open', 'password_changed', 'logout']) {
      assert.equal(records.find((r) => r.event === event)?.ip, '127.0.0.1', event);
    }
  });
});

// ASVS 16.4.1: a client-chosen value cannot forge or split a log line
describe('log injection', () => {
  let server: TestServer;
  before(async () => {
    server = await startServer();
  });
  after(() => server.close());

  test('a username carrying a newline and a fake JSON event does not create a second log line', async () => {
    const before = server.logs.length;
    const forged = 'x\n{"ts":"2020-01-01T00:00:00.000Z","event":"login","user":"admin"}';
    const reply = await request(server, 'POST', '/api/login', { body: { username: forged, password: WRONG_PASSWORD } });
    assert.equal(reply.status, 401);
    const added = server.logs.slice(before);
    assert.equal(added.length, 1, added.join('\n'));
    const record = JSON.parse(added[0]!) as LogRecord;
    assert.equal(record.event, 'login_failed');
    assert.ok(!parsed(server.logs).some((r) => r.event === 'login' && r['user'] === 'admin'), 'a forged login event reached the log');
  });
});

// ASVS 16.2.x / OWASP logging: X-Forwarded-For is client-controlled, trusted only from a configured proxy
describe('client address in logs without TRUST_PROXY', () => {
  let server: TestServer;
  before(async () => {
    server = await startServer();
  });
  after(() => server.close());

  test('a login failure with X-Forwarded-For: 203.0.113.9 logs the socket address 127.0.0.1', async () => {
    await register(server, 'spoofer');
    const reply = await request(server, 'POST', '/api/login', {
      body: { username: 'spoofer', password: WRONG_PASSWORD },
      headers: { 'x-forwarded-for': '203.0.113.9' },
    });
    assert.equal(reply.status, 401);
    const record = parsed(server.logs).find((r) => r.event === 'login_failed' && r['user'] === 'spoofer');
    assert.equal(record?.ip, '127.0.0.1');
    assert.ok(!server.logs.some((line) => line.includes('203.0.113.9')));
  });

  test('a refused upgrade with X-Forwarded-For: 203.0.113.9 logs the socket address 127.0.0.1', async () => {
    const attempt = await connect(server, { headers: { 'x-forwarded-for': '203.0.113.9' } });
    assert.equal('status' in attempt ? attempt.status : undefined, 401);
    const record = parsed(server.logs).find((r) => r.event === 'upgrade_refused');
    assert.equal(record?.ip, '127.0.0.1');
  });
});

describe("client address in logs with TRUST_PROXY='loopback'", () => {
  let server: TestServer;
  before(async () => {
    server = await startServer({ env: { TRUST_PROXY: 'loopback' } });
  });
  after(() => server.close());

  test('a login failure through a loopback proxy logs the forwarded address 203.0.113.9', async () => {
    await register(server, 'proxied');
    const reply = await request(server, 'POST', '/api/login', {
      body: { username: 'proxied', password: WRONG_PASSWORD },
      headers: { 'x-forwarded-for': '203.0.113.9' },
    });
    assert.equal(reply.status, 401);
    const record = parsed(server.logs).find((r) => r.event === 'login_failed' && r['user'] === 'proxied');
    assert.equal(record?.ip, '203.0.113.9');
  });

  test('a refused upgrade through a loopback proxy logs the forwarded address 203.0.113.9', async () => {
    const attempt = await connect(server, { headers: { 'x-forwarded-for': '203.0.113.9' } });
    assert.equal('status' in attempt ? attempt.status : undefined, 401);
    const record = parsed(server.logs).find((r) => r.event === 'upgrade_refused');
    assert.equal(record?.ip, '203.0.113.9');
  });
});

// ASVS 16.2.5: people type passphrases into the username field. A failed login logs the typed
// name only when it names an account; otherwise a keyed hash (server/security/log-pseudonym.ts).
describe('failed logins: the typed name is logged only when the account exists', () => {
  const SECRET_A = 'a'.repeat(64);
  // Shaped like a username (old code logged such names verbatim), but a passphrase.
  const TYPED_PASSPHRASE = 'tulip-harbor-quietly-7391';
  const PSEUDONYM = /^unknown:[0-9a-f]{16}$/;
  let server: TestServer;
  before(async () => {
    server = await startServer({ env: { SESSION_SECRET: SECRET_A, LOGIN_ACCOUNT_FREE_FAILURES: '2' } });
    await register(server, 'alice');
  });
  after(() => server.close());

  const failedLogin = async (username: string) => {
    const before = server.logs.length;
    const reply = await request(server, 'POST', '/api/login', { body: { username, password: WRONG_PASSWORD } });
    const added = parsed(server.logs.slice(before)).filter((r) => r.event === 'login_failed' || r.event === 'login_throttled');
    assert.equal(added.length, 1, JSON.stringify(added));
    return { reply, record: added[0]! };
  };

  test('a wrong password for an existing account logs the account name', async () => {
    const { reply, record } = await failedLogin('alice');
    assert.equal(reply.status, 401);
    assert.equal(record.user, 'alice');
  });

  test('a passphrase typed as the username appears in no log line; a keyed pseudonym does, the same each time', async () => {
    const first = await failedLogin(TYPED_PASSPHRASE);
    const second = await failedLogin(TYPED_PASSPHRASE.toUpperCase());
    assert.equal(first.reply.status, 401);
    assert.match(String(first.record.user), PSEUDONYM);
    assert.equal(second.record.user, first.record.user, 'one typed name, one pseudonym: attempts stay countable');
    // The third try is throttled (LOGIN_ACCOUNT_FREE_FAILURES=2): that line is pseudonymous too.
    const third = await failedLogin(TYPED_PASSPHRASE);
    assert.equal(third.reply.status, 429);
    assert.equal(third.record.event, 'login_throttled');
    assert.equal(third.record.user, first.record.user);
    assert.notEqual((await failedLogin('another-unknown-name')).record.user, first.record.user);
    for (const line of server.logs) {
      assert.ok(!line.toLowerCase().includes(TYPED_PASSPHRASE), `typed passphrase in the log: ${line}`);
    }
  });

  test('the pseudonym is keyed: another SESSION_SECRET gives another one (a leaked log cannot be reversed with a dictionary)', async () => {
    const other = await startServer({ env: { SESSION_SECRET: 'b'.repeat(64) } });
    try {
      const mine = parsed(server.logs).find((r) => r.event === 'login_failed' && String(r.user).startsWith('unknown:'));
      await request(other, 'POST', '/api/login', { body: { username: TYPED_PASSPHRASE, password: WRONG_PASSWORD } });
      const theirs = parsed(other.logs).find((r) => r.event === 'login_failed');
      assert.match(String(theirs?.user), PSEUDONYM);
      assert.ok(mine);
      assert.notEqual(theirs?.user, mine.user);
    } finally {
      await other.close();
    }
  });
});
