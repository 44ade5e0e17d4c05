// requires: redis
// A notice that waited in the outbox is not a recording. Instance A loses Redis for longer than
// BUS_MAX_AGE_SECONDS while it commits a room line (a "joined" line); when Redis is back the
// outbox sends it, and instance B must show it: the envelope is sealed (sequence number, send
// time) when it leaves, not when it was made. Sealed when made, the receiver's replay check
// dropped it as `stale` (found by an internal review). Real Redis, A through a cuttable proxy.
// Run: npx node --test test/scale/bus-outbox-age.test.ts
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openBackend, type Backend } from '../../server/backends.ts';
import type { RoomFrame } from '../../server/cluster/bus.ts';
import { loadConfig } from '../../server/config.ts';
import { createAuditLog } from '../../server/security/audit-log.ts';
import { sleep } from '../helpers/server.ts';
import { startRedis, type RedisService } from '../helpers/services.ts';
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.ts';

const MAX_AGE_SECONDS = 1;
let redis: RedisService;
let proxy: TcpProxy;
const backends: Backend[] = [];
const dirs: string[] = [];
const logs: string[] = [];

async function instance(redisUrl: string): Promise<Backend> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'parley-outbox-'));
  dirs.push(dataDir);
  const config = loadConfig({ DATA_DIR: dataDir, REDIS_URL: redisUrl, BUS_MAX_AGE_SECONDS: String(MAX_AGE_SECONDS) }, []);
  const backend = await openBackend(
    config,
    createAuditLog((line) => logs.push(line)),
    (data) => data.lastSeenAt + 3_600_000,
    'x'.repeat(64),
  );
  backends.push(backend);
  return backend;
}

async function until(what: string, timeoutMs: number, check: () => boolean): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await sleep(50);
  }
}

before(async () => {
  redis = await startRedis();
  proxy = await startTcpProxy(redis.port);
});

after(async () => {
  for (const backend of backends) await backend.store.close();
  await proxy?.close();
  await redis?.stop();
  for (const dir of dirs) fs.rmSync(dir, { recursive: true, force: true });
});

test(`a room line kept in the outbox through a cut longer than BUS_MAX_AGE_SECONDS (${MAX_AGE_SECONDS} s) reaches the other instance`, async () => {
  const a = await instance(proxy.url('redis'));
  const b = await instance(redis.url);
  const heard: RoomFrame[] = [];
  b.bus.onMessage((frame) => heard.push(frame));
  await until('both buses are up', 10_000, () => a.bus.up && b.bus.up);

  proxy.cut();
  await until("A's bus is down", 10_000, () => !a.bus.up);
  const line: RoomFrame = { type: 'room_event', room: 'lobby', event: 'joined', user: 'late', ts: Date.now() };
  a.bus.publishMessage(line);
  await sleep(MAX_AGE_SECONDS * 1000 + 1500); // the line is now older than the receivers' bound
  proxy.resume();

  await until('B heard the line from the outbox', 20_000, () => heard.some((f) => f.type === 'room_event' && f.user === 'late'));
  assert.deepEqual(
    logs.filter((l) => l.includes('bus_bad_message')),
    [],
    'nothing dropped as stale or replayed',
  );
});
