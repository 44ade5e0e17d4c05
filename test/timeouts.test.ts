// Tests for the slow-loris bounds in server/tls.ts and server/parley.ts: a connection that
// stalls its TLS handshake or trickles its headers is cut in seconds, not Node's minutes.
// Run: npx node --test test/timeouts.test.ts
import net from 'node:net';
import tls from 'node:tls';
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfig } from '../server/config.ts';
import { sleep, startServer, type TestServer } from './helpers/server.ts';

type Ending = { closedAfterMs: number; received: string } | { stillOpenAfterMs: number; received: string };

/** Opens a raw TCP socket that never sends a byte; reports when (if ever, within waitMs) the server closes it. */
function silentTcp(port: number, waitMs: number): Promise<Ending> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    let received = '';
    let start = 0;
    socket.on('connect', () => (start = Date.now()));
    socket.on('data', (chunk: Buffer) => (received += chunk.toString('latin1')));
    socket.on('error', () => {});
    const timer = setTimeout(() => {
      socket.removeAllListeners('close');
      socket.destroy();
      resolve({ stillOpenAfterMs: Date.now() - start, received });
    }, waitMs);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve({ closedAfterMs: Date.now() - start, received });
    });
  });
}

/**
 * Completes the TLS handshake, then sends a request line and one header line every 300 ms,
 * never the blank line that ends the headers. Reports when the server cuts the connection.
 */
function trickleHeaders(server: TestServer, waitMs: number): Promise<Ending> {
  return new Promise((resolve, reject) => {
    let received = '';
    let start = 0;
    let interval: NodeJS.Timeout | undefined;
    const socket = tls.connect({ host: '127.0.0.1', port: server.port, ca: server.ca, servername: 'localhost' }, () => {
      start = Date.now();
      socket.write('GET / HTTP/1.1\r\nHost: localhost\r\n');
      interval = setInterval(() => {
        if (!socket.destroyed && socket.writable) socket.write('X-a: b\r\n');
      }, 300);
    });
    socket.on('data', (chunk: Buffer) => (received += chunk.toString('latin1')));
    socket.on('error', (error) => {
      if (start === 0) reject(error); // the handshake itself failed: not what this test is about
    });
    const timer = setTimeout(() => {
      clearInterval(interval);
      socket.removeAllListeners('close');
      socket.destroy();
      resolve({ stillOpenAfterMs: Date.now() - start, received });
    }, waitMs);
    socket.on('close', () => {
      clearTimeout(timer);
      clearInterval(interval);
      resolve({ closedAfterMs: Date.now() - start, received });
    });
  });
}

// OWASP DoS cheat sheet / ASVS 13.x: bound how long an idle TLS handshake may hold a socket
describe('TLS handshake timeout (TLS_HANDSHAKE_TIMEOUT_SECONDS=1)', () => {
  let server: TestServer;
  before(async () => {
    server = await startServer({ env: { TLS_HANDSHAKE_TIMEOUT_SECONDS: '1' } });
  });
  after(() => server.close());

  test('a TCP connection that never sends a byte is closed by the server within ~2 s', async () => {
    const ending = await silentTcp(server.port, 4000);
    assert.ok('closedAfterMs' in ending, `the silent connection was still open after ${JSON.stringify(ending)}`);
    assert.ok(ending.closedAfterMs <= 2500, `closed only after ${ending.closedAfterMs} ms`);
    assert.ok(!ending.received.includes('HTTP/'), 'no HTTP bytes on a connection that never did TLS');
  });

  test('the server still serves new connections after cutting silent ones', async () => {
    await Promise.all([silentTcp(server.port, 3000), silentTcp(server.port, 3000), silentTcp(server.port, 3000)]);
    const ok = await new Promise<boolean>((resolve) => {
      const socket = tls.connect({ host: '127.0.0.1', port: server.port, ca: server.ca, servername: 'localhost' }, () => {
        resolve(true);
        socket.destroy();
      });
      socket.on('error', () => resolve(false));
    });
    assert.equal(ok, true);
  });
});

// Control: with the default (10 s) timeout the same silent socket is still open at 2.5 s, so
// the 1 s cut above comes from TLS_HANDSHAKE_TIMEOUT_SECONDS and not from something else.
describe('TLS handshake timeout control (default setting)', () => {
  let server: TestServer;
  before(async () => {
    server = await startServer();
  });
  after(() => server.close());

  test('with the default timeout a silent TCP connection is still open after 2.5 s', async () => {
    const ending = await silentTcp(server.port, 2500);
    assert.ok('stillOpenAfterMs' in ending, `closed early: ${JSON.stringify(ending)}`);
  });
});

// OWASP DoS cheat sheet (slow loris): headers must arrive whole within HEADERS_TIMEOUT_SECONDS
describe('headers timeout (HEADERS_TIMEOUT_SECONDS=1)', () => {
  let server: TestServer;
  before(async () => {
    server = await startServer({ env: { HEADERS_TIMEOUT_SECONDS: '1' } });
  });
  after(() => server.close());

  test('a TLS client trickling one header line every 300 ms is cut within ~3 s', async () => {
    const ending = await trickleHeaders(server, 5000);
    assert.ok('closedAfterMs' in ending, `the trickling connection was still open: ${JSON.stringify(ending)}`);
    // Node checks the headers deadline once a second, so ~2 s is expected; 3.5 s leaves slack for a loaded machine.
    assert.ok(ending.closedAfterMs <= 3500, `cut only after ${ending.closedAfterMs} ms`);
    // If the server says anything before closing, it is a 408, never a served page.
    if (ending.received) assert.match(ending.received, /^HTTP\/1\.1 408 /);
  });

  test('a normal request on the same server is still answered', async () => {
    await sleep(50);
    const reply = await new Promise<string>((resolve, reject) => {
      const socket = tls.connect({ host: '127.0.0.1', port: server.port, ca: server.ca, servername: 'localhost' }, () =>
        socket.write('GET /api/me HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n'),
      );
      let text = '';
      socket.on('data', (chunk: Buffer) => (text += chunk.toString('latin1')));
      socket.on('end', () => resolve(text));
      socket.on('error', reject);
    });
    assert.match(reply, /^HTTP\/1\.1 401 /);
  });
});

// The shipped defaults are far below Node's (120 s handshake, 60 s headers, 300 s request)
describe('default timeout values', () => {
  const config = loadConfig({}, []);

  test('the default TLS handshake timeout is at most 10 s', () => {
    assert.ok(config.timeouts.tlsHandshakeMs > 0 && config.timeouts.tlsHandshakeMs <= 10_000, String(config.timeouts.tlsHandshakeMs));
  });

  test('the default headers timeout is at most 10 s', () => {
    assert.ok(config.timeouts.headersMs > 0 && config.timeouts.headersMs <= 10_000, String(config.timeouts.headersMs));
  });

  test('the default whole-request timeout is at most 30 s', () => {
    assert.ok(config.timeouts.requestMs > 0 && config.timeouts.requestMs <= 30_000, String(config.timeouts.requestMs));
  });

  test('a server started with defaults applies them to its HTTPS server', async () => {
    const server = await startServer();
    try {
      assert.ok(server.parley.server.headersTimeout <= 10_000, String(server.parley.server.headersTimeout));
      assert.ok(server.parley.server.requestTimeout <= 30_000, String(server.parley.server.requestTimeout));
    } finally {
      await server.close();
    }
  });
});
