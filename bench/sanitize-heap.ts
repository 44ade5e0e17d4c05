// Heap and throughput of the message sanitizer, measured the way the server runs it.
//
//   npx node --expose-gc bench/sanitize-heap.ts [--count 200000] [--sync-count 5000] [--yield-every 100]
//                                               [--pool-workers N] [--pool-only]
//
// 1. HTML messages, yielding to the event loop (setImmediate) every 100 — like a server
//    that sanitizes one message per frame handler. Heap after GC at start, 1/3, 2/3, end.
// 2. The same for plain-text messages (the fast path: no parser).
// 3. For contrast, the synchronous-loop artefact: N HTML messages in one job, heap retained
//    before the job returns and after one setImmediate. See docs/decisions/004-sanitizer-memory.md.
//
// 4. HTML messages through the server's worker pool (server/security/sanitizer-pool.ts), as
//    many in flight as a busy server would have: msgs/s next to the main-thread figure, and
//    each worker's heap after it yielded (decision 004's method, inside the worker) at start,
//    1/3, 2/3 and end. --pool-only runs a short main-thread run for the comparison and this.
//
// Prints a table, then one JSON line; the JSON also goes to bench/results/sanitize.json
// (with --pool-only: sanitize-pool.json).
import { mkdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { parseArgs } from 'node:util';
import { performance } from 'node:perf_hooks';
import v8 from 'node:v8';
import vm from 'node:vm';
import DOMPurify from 'dompurify';
import os from 'node:os';
import { sanitizeMessage } from '../server/security/sanitize.ts';
import { SanitizerPool } from '../server/security/sanitizer-pool.ts';

const { values } = parseArgs({
  options: {
    count: { type: 'string', default: '200000' },
    'sync-count': { type: 'string', default: '5000' },
    'yield-every': { type: 'string', default: '100' },
    'pool-workers': { type: 'string', default: String(Math.max(1, os.availableParallelism() - 1)) },
    'pool-only': { type: 'boolean', default: false },
  },
});
const COUNT = positiveInt(values.count, '--count');
const SYNC_COUNT = positiveInt(values['sync-count'], '--sync-count');
const YIELD_EVERY = positiveInt(values['yield-every'], '--yield-every');
const POOL_WORKERS = positiveInt(values['pool-workers'], '--pool-workers');
const POOL_ONLY = values['pool-only'];

function positiveInt(text: string, flag: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`${flag} must be a positive integer, got ${text}`);
  return n;
}

/** global.gc with --expose-gc; otherwise the same function obtained at run time. */
function getGc(): () => void {
  if (typeof globalThis.gc === 'function') return globalThis.gc as () => void;
  v8.setFlagsFromString('--expose-gc');
  return vm.runInNewContext('gc') as () => void;
}
const gc = getGc();
const MB = 1024 * 1024;
const yieldToLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

type Sample = { heapUsedMB: number; rssMB: number };
/** End the current job first: V8 keeps WeakRef targets (jsdom documents) until it ends. */
async function sample(): Promise<Sample> {
  await yieldToLoop();
  gc();
  gc();
  const { heapUsed, rss } = process.memoryUsage();
  return { heapUsedMB: heapUsed / MB, rssMB: rss / MB };
}

// ---- messages -------------------------------------------------------------
// Realistic chat HTML: formatting, links, an escaped `<`, and every 10th an XSS attempt.
const HTML_TEMPLATES: ReadonlyArray<(i: number) => string> = [
  (i) => `<b>standup</b> in 5 min, notes: <a href="https://wiki.example.com/standup/${i}">wiki</a>`,
  (i) => `did you see <i>this</i>? <code>npm test</code> fails on #${i}`,
  (i) => `<strong>deploy ${i}</strong> done &amp; verified, thanks <em>everyone</em>`,
  (i) => `<a href="mailto:ops@example.com">ops</a> please look at <em>ticket ${i}</em>`,
  (i) => `if a &lt; b and c > ${i} then <b>ok</b>`,
  (i) => `<b>heads-up:</b> the <a href="https://status.example.com/incidents/${i}">incident</a> is resolved`,
  (i) => `<i>lunch?</i> <b>12:30</b> at the usual place (${i})`,
  (i) => `see <code>git log --oneline -n ${i % 50}</code> and <a href="https://github.com/example/repo/pull/${i}">the PR</a>`,
  (i) => `<strong>+1</strong> to <i>option ${i % 3}</i>`,
];
const XSS_TEMPLATES: ReadonlyArray<(i: number) => string> = [
  (i) => `<img src=x onerror=alert(${i})>`,
  (i) => `<a href="javascript:alert(${i})" onclick="steal()">free stuff</a>`,
  (i) => `<svg onload=alert(${i})><b>hi</b></svg>`,
  (i) => `<math><mtext><table><mglyph><style><img src=x onerror=alert(${i})>`,
];
const PLAIN_TEMPLATES: ReadonlyArray<(i: number) => string> = [
  (i) => `ok, see you at ${i % 24}:00`,
  (i) => `that's "great" -> ship it (build ${i})`,
  (i) => `can someone review PR ${i}? it's small`,
  () => `lgtm 👍`,
  (i) => `running late, 10 min. message #${i}`,
];

const htmlMessage = (i: number): string => (i % 10 === 9 ? XSS_TEMPLATES[i % XSS_TEMPLATES.length]!(i) : HTML_TEMPLATES[i % HTML_TEMPLATES.length]!(i));
const plainMessage = (i: number): string => PLAIN_TEMPLATES[i % PLAIN_TEMPLATES.length]!(i);

// ---- runs -----------------------------------------------------------------
type Run = {
  kind: string;
  count: number;
  heapUsedMB: { start: number; oneThird: number; twoThirds: number; end: number };
  rssMB: { start: number; oneThird: number; twoThirds: number; end: number };
  growthMB: number;
  growthPerMessageKB: number;
  /** From the 1/3 sample to the end: excludes one-off start-up/warm-up effects. */
  steadyGrowthMB: number;
  seconds: number;
  msgsPerSec: number;
  /** Per third: a progressive slowdown (as reported in isomorphic-dompurify#368) would show here. */
  msgsPerSecByThird: number[];
};

/** Sanitize `count` messages the way the server does: yield every YIELD_EVERY messages. */
async function yieldingRun(kind: string, make: (i: number) => string, count: number): Promise<Run> {
  // Warm-up outside the measurement: JIT, DOMPurify/jsdom lazy caches.
  for (let i = 0; i < 2000; i++) {
    sanitizeMessage(make(i));
    if (i % YIELD_EVERY === YIELD_EVERY - 1) await yieldToLoop();
  }
  const checkpoints = [Math.floor(count / 3), Math.floor((2 * count) / 3), count];
  const samples: Sample[] = [await sample()];
  let elapsed = 0;
  const rates: number[] = [];
  let sink = 0; // use every result, so nothing can be optimized away
  let done = 0;
  for (const until of checkpoints) {
    const t0 = performance.now();
    for (; done < until; done++) {
      sink += sanitizeMessage(make(done)).length;
      if (done % YIELD_EVERY === YIELD_EVERY - 1) await yieldToLoop();
    }
    const ms = performance.now() - t0; // the checkpoint's forced GC is not counted
    elapsed += ms;
    rates.push((until - (checkpoints[rates.length - 1] ?? 0)) / (ms / 1000));
    samples.push(await sample());
  }
  if (sink === 0) throw new Error('no output');
  const [s0, s1, s2, s3] = samples as [Sample, Sample, Sample, Sample];
  const growthMB = s3.heapUsedMB - s0.heapUsedMB;
  return {
    kind,
    count,
    heapUsedMB: { start: s0.heapUsedMB, oneThird: s1.heapUsedMB, twoThirds: s2.heapUsedMB, end: s3.heapUsedMB },
    rssMB: { start: s0.rssMB, oneThird: s1.rssMB, twoThirds: s2.rssMB, end: s3.rssMB },
    growthMB,
    growthPerMessageKB: (growthMB * 1024) / count,
    steadyGrowthMB: s3.heapUsedMB - s1.heapUsedMB,
    seconds: elapsed / 1000,
    msgsPerSec: count / (elapsed / 1000),
    msgsPerSecByThird: rates,
  };
}

type SyncRun = {
  count: number;
  retainedInJobMB: number;
  retainedInJobPerMessageKB: number;
  afterOneSetImmediatePerMessageKB: number;
  msgsPerSec: number;
};

/** The artefact: everything in one synchronous job. Measured *before* the job returns. */
async function syncRun(count: number): Promise<SyncRun> {
  const before = (await sample()).heapUsedMB;
  const t0 = performance.now();
  let sink = 0;
  for (let i = 0; i < count; i++) sink += sanitizeMessage(htmlMessage(i)).length;
  const seconds = (performance.now() - t0) / 1000;
  gc();
  gc(); // a full GC inside the job: the documents survive it
  const inJob = process.memoryUsage().heapUsed / MB - before;
  const afterYield = (await sample()).heapUsedMB - before;
  if (sink === 0) throw new Error('no output');
  return {
    count,
    retainedInJobMB: inJob,
    retainedInJobPerMessageKB: (inJob * 1024) / count,
    afterOneSetImmediatePerMessageKB: (afterYield * 1024) / count,
    msgsPerSec: count / seconds,
  };
}

type PoolRun = { workers: number; count: number; inFlight: number; seconds: number; msgsPerSec: number; mainThreadMsgsPerSec: number; workerHeapMB: number[] };

/** `count` HTML messages through the worker pool, `inFlight` at a time; worker heap measured inside each worker after it yielded. */
async function poolRun(count: number, mainThreadMsgsPerSec: number): Promise<PoolRun> {
  const pool = new SanitizerPool({ workers: POOL_WORKERS, budgetMs: 10_000, maxQueue: 1_000_000, workerHeapMb: 256 });
  const inFlight = POOL_WORKERS * 8;
  try {
    const mean = async () => (await pool.heapUsed()).reduce((a, b) => a + b, 0) / POOL_WORKERS / MB;
    let done = 0;
    const drive = async (until: number) => {
      await Promise.all(
        Array.from({ length: inFlight }, async () => {
          while (done < until) {
            const result = await pool.sanitize(htmlMessage(done++));
            if (!result.ok) throw new Error(`pool refused a message: ${result.reason}`);
          }
        }),
      );
    };
    await drive(2000); // warm-up
    done = 0;
    const heap = [await mean()];
    let elapsed = 0;
    for (const until of [Math.floor(count / 3), Math.floor((2 * count) / 3), count]) {
      const t0 = performance.now();
      await drive(until);
      elapsed += performance.now() - t0;
      heap.push(await mean());
    }
    return { workers: POOL_WORKERS, count, inFlight, seconds: elapsed / 1000, msgsPerSec: count / (elapsed / 1000), mainThreadMsgsPerSec, workerHeapMB: heap };
  } finally {
    await pool.close();
  }
}

if (POOL_ONLY) {
  const main = await yieldingRun(`HTML, yield every ${YIELD_EVERY}`, htmlMessage, Math.min(COUNT, 20_000));
  const pool = await poolRun(COUNT, main.msgsPerSec);
  const out = { bench: 'sanitize-pool', date: new Date().toISOString(), node: process.version, cpus: os.availableParallelism(), pool };
  console.log(
    `HTML through the pool (${pool.workers} workers, ${pool.inFlight} in flight): ${Math.round(pool.msgsPerSec).toLocaleString('en-US')} msgs/s ` +
      `vs. ${Math.round(pool.mainThreadMsgsPerSec).toLocaleString('en-US')} on the main thread; worker heap after yielding ${pool.workerHeapMB.map((h) => h.toFixed(1)).join(' → ')} MB`,
  );
  console.log(JSON.stringify(out));
  mkdirSync(new URL('./results/', import.meta.url), { recursive: true });
  writeFileSync(new URL('./results/sanitize-pool.json', import.meta.url), `${JSON.stringify(out, null, 2)}\n`);
  process.exit(0);
}

const html = await yieldingRun(`HTML, yield every ${YIELD_EVERY}`, htmlMessage, COUNT);
const plain = await yieldingRun(`plain text, yield every ${YIELD_EVERY}`, plainMessage, COUNT);
const sync = await syncRun(SYNC_COUNT);
const pool = await poolRun(Math.min(COUNT, 50_000), html.msgsPerSec);

// ---- report ---------------------------------------------------------------
const require = createRequire(import.meta.url);
const result = {
  bench: 'sanitize-heap',
  date: new Date().toISOString(),
  node: process.version,
  jsdom: (require('jsdom/package.json') as { version: string }).version,
  dompurify: DOMPurify.version,
  gcExposed: process.execArgv.includes('--expose-gc'),
  yieldEvery: YIELD_EVERY,
  html,
  plain,
  sync,
  pool,
};

const f1 = (n: number): string => n.toFixed(1);
const f2 = (n: number): string => n.toFixed(2);
const rows: string[][] = [
  ['run', 'messages', 'heap start', 'heap 1/3', 'heap 2/3', 'heap end', 'growth', 'per msg', '1/3→end', 'rss start', 'rss end', 'msgs/s'],
  ...[html, plain].map((r) => [
    r.kind,
    String(r.count),
    `${f1(r.heapUsedMB.start)} MB`,
    `${f1(r.heapUsedMB.oneThird)} MB`,
    `${f1(r.heapUsedMB.twoThirds)} MB`,
    `${f1(r.heapUsedMB.end)} MB`,
    `${f2(r.growthMB)} MB`,
    `${r.growthPerMessageKB.toFixed(4)} KB`,
    `${f2(r.steadyGrowthMB)} MB`,
    `${f1(r.rssMB.start)} MB`,
    `${f1(r.rssMB.end)} MB`,
    Math.round(r.msgsPerSec).toLocaleString('en-US'),
  ]),
];
const widths = rows[0]!.map((_, c) => Math.max(...rows.map((row) => row[c]!.length)));
const line = (row: string[]): string => row.map((cell, c) => (c < 1 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join('  ');
console.log(`Node ${result.node}, jsdom ${result.jsdom}, DOMPurify ${result.dompurify}; heap = heapUsed after setImmediate + GC`);
console.log(line(rows[0]!));
console.log(widths.map((w) => '-'.repeat(w)).join('  '));
for (const row of rows.slice(1)) console.log(line(row));
console.log(`HTML msgs/s by third: ${html.msgsPerSecByThird.map((r) => Math.round(r).toLocaleString('en-US')).join(' / ')}`);
console.log(
  `\nSynchronous loop (the artefact), ${sync.count} HTML messages in one job: ` +
    `${f1(sync.retainedInJobMB)} MB retained before returning = ${f2(sync.retainedInJobPerMessageKB)} KB/message ` +
    `(after a full GC); after one setImmediate: ${sync.afterOneSetImmediatePerMessageKB.toFixed(3)} KB/message.`,
);
console.log(
  `HTML through the worker pool (${pool.workers} workers, ${pool.inFlight} in flight), ${pool.count} messages: ` +
    `${Math.round(pool.msgsPerSec).toLocaleString('en-US')} msgs/s vs. ${Math.round(pool.mainThreadMsgsPerSec).toLocaleString('en-US')} on the main thread; ` +
    `worker heap after yielding ${pool.workerHeapMB.map((h) => f1(h)).join(' → ')} MB.`,
);
if (!result.gcExposed) console.log('(gc obtained at run time; run with --expose-gc for the documented setup)');
const json = JSON.stringify(result);
console.log(json);
const dir = new URL('./results/', import.meta.url);
mkdirSync(dir, { recursive: true });
writeFileSync(new URL('sanitize.json', dir), `${JSON.stringify(result, null, 2)}\n`);
