// Tests for server/security/passwords.ts, server/security/login-throttle.ts and the account
// routes: argon2id storage, the length-based policy, no account enumeration at login, and
// throttled guessing. Run: npx node --test test/passwords.test.ts
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { dictionary } from '@zxcvbn-ts/language-common';
import { isCommonPassword } from '../server/security/common-passwords.ts';
import { hashPassword, verifyPassword } from '../server/security/passwords.ts';
import { PASSWORD, login, register, request, sleep, startServer, type Reply, type TestServer } from './helpers/server.ts';

const PHC_ARGON2ID = /^\$argon2id\$v=19\$m=19456,t=2,p=1\$([A-Za-z0-9+/]{22})\$([A-Za-z0-9+/]{43})$/;

function registerReply(server: TestServer, username: string, password: string): Promise<Reply> {
  return request(server, 'POST', '/api/register', { body: { username, password } });
}

function loginReply(server: TestServer, username: string, password: string): Promise<Reply> {
  return request(server, 'POST', '/api/login', { body: { username, password } });
}

// ASVS 11.4.2 / OWASP Password Storage cheat sheet: argon2id, m=19 MiB, t=2, p=1, random salt
describe('password hashing', () => {
  test('hashPassword yields a PHC argon2id string with m=19456, t=2, p=1, a 16-byte salt and a 32-byte tag', async () => {
    const hash = await hashPassword(PASSWORD);
    assert.match(hash, PHC_ARGON2ID);
  });

  test('hashing the same password twice gives two different salts and hashes', async () => {
    const [a, b] = await Promise.all([hashPassword(PASSWORD), hashPassword(PASSWORD)]);
    const saltA = PHC_ARGON2ID.exec(a)?.[1];
    const saltB = PHC_ARGON2ID.exec(b)?.[1];
    assert.ok(saltA && saltB);
    assert.notEqual(saltA, saltB);
    assert.notEqual(a, b);
  });

  test('verifyPassword accepts the right password and refuses a wrong one', async () => {
    const hash = await hashPassword(PASSWORD);
    assert.equal(await verifyPassword(PASSWORD, hash), true);
    assert.equal(await verifyPassword(`${PASSWORD}!`, hash), false);
    assert.equal(await verifyPassword('', hash), false);
  });

  test('verifyPassword refuses a hash whose tag was tampered with, or a non-PHC string', async () => {
    const hash = await hashPassword(PASSWORD);
    const tampered = hash.slice(0, -2) + (hash.endsWith('AA') ? 'BB' : 'AA');
    assert.equal(await verifyPassword(PASSWORD, tampered), false);
    assert.equal(await verifyPassword(PASSWORD, PASSWORD), false);
  });
});

// ASVS 6.2.1 / 6.2.9 / NIST 800-63B: at least 12 characters, passphrases and any characters allowed
describe('password policy, registration and login', () => {
  let server: TestServer;
  // Exactly 200 characters (code points), sliced by code point so no emoji is cut in half.
  const passphrase = [...('tea 🫖 at five, sunny ☀️ days & a quiet café ' + '🦜 parrots say hello '.repeat(10))].slice(0, 200).join('');
  before(async () => {
    server = await startServer();
  });
  after(() => server.close());

  test('an 11-character password is refused 400 weak_password', async () => {
    const reply = await registerReply(server, 'shorty', 'abcdefghijk');
    assert.equal(reply.status, 400, reply.text);
    assert.equal(reply.json?.error, 'weak_password');
  });

  test('11 emoji (22 UTF-16 code units) still count as 11 characters and are refused', async () => {
    const reply = await registerReply(server, 'emoji-short', '🦜'.repeat(11));
    assert.equal(reply.status, 400, reply.text);
    assert.equal(reply.json?.error, 'weak_password');
  });

  test('a 12-character password is accepted (201)', async () => {
    const reply = await registerReply(server, 'twelve', 'abcdefghijk1');
    assert.equal(reply.status, 201, reply.text);
  });

  test('a 200-character passphrase with spaces and emoji is accepted, and login works with it', async () => {
    assert.equal([...passphrase].length, 200);
    assert.ok(passphrase.includes(' ') && passphrase.includes('🦜'));
    const reply = await registerReply(server, 'poet', passphrase);
    assert.equal(reply.status, 201, reply.text);
    const signedIn = await loginReply(server, 'poet', passphrase);
    assert.equal(signedIn.status, 200, signedIn.text);
    assert.equal(signedIn.json?.username, 'poet');
  });

  test('a password containing the username (in any case) is refused 400 weak_password', async () => {
    const reply = await registerReply(server, 'bobby', 'my name is BoBBy and I like tea');
    assert.equal(reply.status, 400, reply.text);
    assert.equal(reply.json?.error, 'weak_password');
  });

  // ASVS 6.2.4: a breached password padded to the length rule is refused over the real route
  test('a breached password padded to 12 characters ("password1234") is refused 400 weak_password, saying why', async () => {
    const reply = await registerReply(server, 'padder', 'password1234');
    assert.equal(reply.status, 400, reply.text);
    assert.equal(reply.json?.error, 'weak_password');
    assert.match(String(reply.json?.message), /too common/);
  });

  test('a password change to a breached password ("Summer2024!!") is refused 400 weak_password; the old password still works', async () => {
    await register(server, 'changer');
    const cookie = await login(server, 'changer');
    const reply = await request(server, 'POST', '/api/password', { cookie, body: { currentPassword: PASSWORD, newPassword: 'Summer2024!!' } });
    assert.equal(reply.status, 400, reply.text);
    assert.equal(reply.json?.error, 'weak_password');
    assert.equal((await loginReply(server, 'changer', PASSWORD)).status, 200);
  });

  test('registering "alice" after "Alice" is refused 409 (usernames are case-insensitive)', async () => {
    const first = await registerReply(server, 'Alice', PASSWORD);
    assert.equal(first.status, 201, first.text);
    const second = await registerReply(server, 'alice', PASSWORD);
    assert.equal(second.status, 409, second.text);
    assert.equal(second.json?.error, 'username_taken');
  });

  // ASVS 6.3.8 / OWASP Authentication cheat sheet: no user enumeration through login errors
  test('a wrong password and a nonexistent user get the identical generic 401 body', async () => {
    const wrongPassword = await loginReply(server, 'alice', 'not the right passphrase');
    const noSuchUser = await loginReply(server, 'nobody-here', 'not the right passphrase');
    assert.equal(wrongPassword.status, 401);
    assert.equal(noSuchUser.status, 401);
    assert.equal(wrongPassword.json?.error, 'invalid_credentials');
    assert.deepEqual(noSuchUser.json, wrongPassword.json);
    assert.equal(noSuchUser.text, wrongPassword.text);
  });

  test('a wrong-password login sets no session cookie', async () => {
    const reply = await loginReply(server, 'alice', 'not the right passphrase');
    assert.equal(reply.status, 401);
    assert.equal(reply.headers['set-cookie'], undefined);
  });

  // ASVS 11.4.1: passwords are stored only as salted hashes
  test('no file in DATA_DIR (database, WAL, journal) contains a plaintext password', async () => {
    const marker = 'plaintext-marker-passphrase-7f3a9c';
    await register(server, 'marker-user', marker);
    const cookie = await login(server, 'marker-user', marker);
    const changed = 'changed-marker-passphrase-51be02';
    const reply = await request(server, 'POST', '/api/password', { cookie, body: { currentPassword: marker, newPassword: changed } });
    assert.equal(reply.status, 204, reply.text);

    const files = fs.readdirSync(server.dataDir).filter((name) => name.startsWith('parley.sqlite'));
    assert.ok(files.includes('parley.sqlite'), `DATA_DIR holds ${files.join(', ')}`);
    const bytes = Buffer.concat(files.map((name) => fs.readFileSync(path.join(server.dataDir, name))));
    // The scan does see what was written (the username is there), so a miss below is meaningful.
    assert.ok(bytes.includes(Buffer.from('marker-user')), 'the scan must see the stored user row');
    for (const secret of [marker, changed, PASSWORD, passphrase, 'abcdefghijk1']) {
      assert.ok(!bytes.includes(Buffer.from(secret, 'utf8')), `plaintext password found in DATA_DIR: ${secret.slice(0, 20)}…`);
      assert.ok(!bytes.includes(Buffer.from(secret, 'utf16le')), `UTF-16 plaintext password found in DATA_DIR: ${secret.slice(0, 20)}…`);
    }
    const stored = await server.parley.store.findUser('marker-user');
    assert.match(stored?.passwordHash ?? '', PHC_ARGON2ID);
  });
});

// ASVS 6.3.1 / OWASP Authentication cheat sheet: per-account backoff against password guessing
describe('per-account login throttling (LOGIN_ACCOUNT_FREE_FAILURES=3)', () => {
  let server: TestServer;
  before(async () => {
    server = await startServer({ env: { LOGIN_ACCOUNT_FREE_FAILURES: '3' } });
    await register(server, 'target');
    await register(server, 'bystander');
  });
  after(() => server.close());

  test('after 3 wrong passwords the 4th attempt, even with the CORRECT password, is 429 with Retry-After', async () => {
    // The failures use three spellings of the name: the lock follows the account, not the exact string.
    for (const [i, name] of ['target', 'Target', 'TARGET'].entries()) {
      const reply = await loginReply(server, name, `wrong guess number ${i}`);
      assert.equal(reply.status, 401, `failure ${i + 1}: ${reply.text}`);
    }
    const locked = await loginReply(server, 'target', PASSWORD);
    assert.equal(locked.status, 429, locked.text);
    assert.equal(locked.json?.error, 'too_many_attempts');
    // The first backoff is 1 s.
    assert.equal(locked.headers['retry-after'], '1');
    assert.equal(locked.headers['set-cookie'], undefined, 'no session while throttled');
  });

  test('another account from the same address is not locked', async () => {
    const reply = await loginReply(server, 'bystander', PASSWORD);
    assert.equal(reply.status, 200, reply.text);
  });

  test('once the first backoff (1 s) has passed, the correct password works', async () => {
    await sleep(1200);
    const reply = await loginReply(server, 'target', PASSWORD);
    assert.equal(reply.status, 200, reply.text);
  });

  test('a nonexistent account is throttled the same way (the throttle reveals nothing about existence)', async () => {
    for (let i = 0; i < 3; i++) assert.equal((await loginReply(server, 'ghost', `wrong guess number ${i}`)).status, 401);
    const reply = await loginReply(server, 'ghost', PASSWORD);
    assert.equal(reply.status, 429, reply.text);
    assert.ok(reply.headers['retry-after']);
  });
});

// ASVS 6.3.1: per-address limit counts failures only, so one NAT full of real users is never blocked
describe('per-address login throttling (LOGIN_ADDRESS_FAILURES=5, LOGIN_ACCOUNT_FREE_FAILURES=100)', () => {
  let server: TestServer;
  const users = Array.from({ length: 30 }, (_, i) => `nat-user-${i}`);
  before(async () => {
    server = await startServer({ env: { LOGIN_ADDRESS_FAILURES: '5', LOGIN_ACCOUNT_FREE_FAILURES: '100' } });
    await Promise.all(users.map((name) => register(server, name)));
  });
  after(() => server.close());

  test('30 successful logins of different users from one address all succeed (a workshop behind NAT)', async () => {
    const replies = await Promise.all(users.map((name) => loginReply(server, name, PASSWORD)));
    assert.deepEqual(
      replies.map((r) => r.status),
      users.map(() => 200),
    );
  });

  test('5 failures across different usernames make the 6th attempt from that address 429 with Retry-After', async () => {
    for (let i = 0; i < 5; i++) {
      const reply = await loginReply(server, `sprayed-${i}`, 'Summer2024!Summer');
      assert.equal(reply.status, 401, `failure ${i + 1}: ${reply.text}`);
    }
    const sixth = await loginReply(server, 'sprayed-5', 'Summer2024!Summer');
    assert.equal(sixth.status, 429, sixth.text);
    assert.equal(sixth.json?.error, 'too_many_attempts');
    assert.ok(Number(sixth.headers['retry-after']) >= 1, String(sixth.headers['retry-after']));
  });
});

// Hashing is bounded (memory, thread pool), but registrations and logins queue separately:
// a registration flood gets 503 server_busy without starving the people trying to log in.
describe('a registration flood does not starve logins', () => {
  let server: TestServer;
  before(async () => {
    server = await startServer({ env: { PASSWORD_HASH_CONCURRENCY: '1', PASSWORD_HASH_QUEUE: '0' } });
  });
  after(() => server.close());

  test('30 parallel registrations hit 503 server_busy while a login in the middle of them succeeds', async () => {
    await register(server, 'steady');
    const flood = Array.from({ length: 30 }, (_, i) =>
      request(server, 'POST', '/api/register', { body: { username: `flood${i}`, password: 'correct horse battery staple' } }),
    );
    const loginReply = await request(server, 'POST', '/api/login', { body: { username: 'steady', password: 'correct horse battery staple' } });
    const replies = await Promise.all(flood);
    assert.ok(
      replies.some((r) => r.status === 503 && r.json?.error === 'server_busy'),
      'the flood was bounded',
    );
    assert.equal(loginReply.status, 200, JSON.stringify(loginReply.json));
  });
});

// ASVS 6.2.4: "checked against at least the top 3000 passwords which match the password policy".
// The list's top 3000 are mostly shorter than 12 characters, so what matches the policy is
// those passwords padded to it — the ways people pad are what the check must see through.
describe('breached and padded passwords (server/security/common-passwords.ts)', () => {
  const top3000 = dictionary['passwords-common'].slice(0, 3000);
  const toTwelve = (base: string, pad: string) => base + pad.repeat(Math.ceil(Math.max(0, 12 - base.length) / pad.length));
  const paddings: Array<[string, (p: string) => string]> = [
    ['digits appended (dragon → dragon123456)', (p) => toTwelve(p, '1234567890').slice(0, Math.max(12, p.length))],
    ['a year and a symbol (dragon → Dragon2024!!!…)', (p) => toTwelve(`${p[0]!.toUpperCase()}${p.slice(1)}2024`, '!')],
    ['repeated (dragon → dragondragon)', (p) => toTwelve(p, p)],
    ['leet + digits (password → p@ssw0rd1234)', (p) => toTwelve(p.replace(/a/g, '@').replace(/o/g, '0').replace(/s/g, '$'), '1234')],
    ['repeated with spaces (monkey → monkey monkey)', (p) => toTwelve(p, ` ${p}`)],
  ];

  for (const [how, pad] of paddings) {
    test(`the list's top 3000, ${how}: every one refused`, (t) => {
      const padded = top3000.map(pad);
      assert.ok(
        padded.every((p) => [...p].length >= 12),
        'every variant meets the length policy',
      );
      const missed = padded.filter((p) => !isCommonPassword(p));
      t.diagnostic(`${padded.length - missed.length}/${padded.length} refused`);
      assert.deepEqual(missed, []);
    });
  }

  test('the list entries that already have 12+ characters are refused as they stand', (t) => {
    const long = dictionary['passwords-common'].filter((p) => [...p].length >= 12);
    t.diagnostic(`${long.length} entries of 12+ characters`);
    assert.ok(long.length > 100);
    assert.deepEqual(
      long.filter((p) => !isCommonPassword(p)),
      [],
    );
  });

  test('sequences and short repeats are refused', () => {
    for (const p of ['123456789012', 'abcdefghijkl', '987654321098', '123412341234', 'abcabcabcabc', 'abcdabcdabcd', 'qwerqwerqwer']) {
      assert.equal(isCommonPassword(p), true, p);
    }
  });

  // Shapes none of the generated paddings above produce (found in review), so the rules are not
  // only tested against the inputs they were written for.
  test('held-out padded forms are refused', () => {
    const padded = [
      'dragondragon1', // repeated, then padded
      'monkeymonkey!',
      'letmeinletmein1',
      '1etmein12345', // 1 for l
      'he11o1234567',
      '123456789password', // a long sequence in front
      'password¡¡¡¡', // non-ASCII padding
      'password🔥🔥🔥🔥',
      'PASSWORD2024!',
      'iloveyou.iloveyou',
    ];
    assert.deepEqual(
      padded.filter((p) => !isCommonPassword(p)),
      [],
    );
  });

  test('a listed word followed by a long random tail is entropy, not padding: it passes', () => {
    const fine = ['Zebra!8#4@1%^&*(', 'dragon83920174638501928374', 'love#8%2^7&1*4(9)0_3'];
    assert.deepEqual(
      fine.filter((p) => isCommonPassword(p)),
      [],
    );
  });

  // Seeded, so the figures are the same on every run (mulberry32).
  function seeded(seed: number): (below: number) => number {
    return (below) => {
      seed = (seed + 0x6d2b79f5) | 0;
      let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
      return Math.floor((((t ^ (t >>> 14)) >>> 0) / 2 ** 32) * below);
    };
  }

  test('random passwords and passphrases are not refused: 2,000 of each kind (no false "too common")', (t) => {
    const random = seeded(0x5eed);
    const pick = (alphabet: string, n: number) => Array.from({ length: n }, () => alphabet[random(alphabet.length)]).join('');
    const words = dictionary['diceware-common'];
    const kinds: Array<[string, () => string, number]> = [
      ['12 random letters and digits', () => pick('abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789', 12), 0],
      ['12 random printable ASCII', () => pick('abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789!@#$%^&*()-_=+[]{};:,.<>/?', 12), 0],
      ['4 random diceware words', () => Array.from({ length: 4 }, () => words[random(words.length)]).join(' '), 0],
      // A listed word plus 8 random digits: long random padding is entropy, not a disguise.
      ['a diceware word + 8 random digits', () => words[random(words.length)] + pick('0123456789', 8), 0.01],
      // Twelve digits are sometimes a listed date or PIN plus a pattern; a few refusals are expected.
      ['12 random digits', () => pick('0123456789', 12), 0.02],
    ];
    for (const [what, make, allowed] of kinds) {
      const refused = Array.from({ length: 2000 }, make).filter((p) => isCommonPassword(p));
      t.diagnostic(`${what}: ${refused.length}/2000 refused${refused.length ? ` (e.g. ${refused.slice(0, 3).join(', ')})` : ''}`);
      assert.ok(refused.length <= 2000 * allowed, `${what}: ${refused.length} refused`);
    }
  });

  test('passphrases and random passwords of any composition pass (ASVS 6.2.5: no composition rules)', () => {
    const fine = [
      PASSWORD,
      'purple monkey dishwasher',
      'jd8#kq!Zp2vL',
      '839201746385', // twelve random digits
      '🦜🫖☀️🎉🐙🍕🚀🌈🎸🐳🍩🔥', // twelve emoji
      'tea 🫖 at five, sunny days',
      'Tr0ub4dor&3xx',
    ];
    assert.deepEqual(
      fine.filter((p) => isCommonPassword(p)),
      [],
    );
  });
});
