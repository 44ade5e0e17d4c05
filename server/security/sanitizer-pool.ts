// Message rendering and HTML sanitizing off the event loop: a small pool of worker threads
// (piscina), each with its own markdown-it and jsdom window (sanitize-worker.ts), and a time
// budget per message. The event loop that reads every socket and fans out every message never
// parses Markdown or HTML, so one user's costly message delays nobody else's delivery. Why and
// how much: docs/decisions/011-sanitizer-worker-pool.md.
//
// The budget counts from the moment a worker starts the message (the worker writes the time
// into a small shared buffer the task carries; a timer checks it), not from when it was
// queued: a message that waited behind others is not refused for their cost. (A MessagePort
// per task would say the same, at 3× the round-trip cost.) A parse cannot be interrupted from
// inside, so a message over budget is aborted, which terminates its worker; piscina starts a
// replacement.
//
// The pool is shared, so it is shared fairly (decision 011, amendment; OWASP WebSocket cheat
// sheet: limit the resources one client may use). Waiting messages are kept here, one queue per
// user, and handed to piscina only as workers come free, one user's message at a time in turn:
// a user's waiting messages cannot sit in front of everyone else's. A user may have
// `maxInFlightPerUser` messages in the pool, an address `maxInFlightPerAddress` (a share of the
// queue, not a handful: a workshop puts hundreds of people behind one NAT address), everyone
// together `workers + maxQueue`. When the address's share or the whole queue is full, the user
// holding the most gives way, if they hold more than the newcomer would: their newest waiting
// message is refused instead. So many accounts behind one address cannot crowd out the other
// people there, unless they are at least as many as the address's share.
import { fileURLToPath } from 'node:url';
import { Piscina } from 'piscina';
import { limitKey } from './client-address.ts';
import type { SanitizeResult, SanitizeTask } from './sanitize-worker.ts';

/** Who a message is from: the per-user and per-address shares are counted under these. */
export type Author = { user: string; address: string };

export type PoolOptions = {
  /** Worker threads (SANITIZE_WORKERS). */
  workers: number;
  /** Wall-clock time one message may take inside a worker (SANITIZE_BUDGET_SECONDS). */
  budgetMs: number;
  /** Messages that may wait for a worker; past this the pool answers `busy`. */
  maxQueue: number;
  /** A worker's heap is bounded too: a message that makes it grow past this ends that worker (→ `over_budget`). */
  workerHeapMb: number;
  /** Messages one author may have running or waiting; past it `in_flight` (unbounded when absent). */
  maxInFlightPerUser?: number;
  /** Messages from one address (an IPv6 /64) running or waiting; past it `busy` (unbounded when absent). */
  maxInFlightPerAddress?: number;
};

/**
 * `busy`: the whole queue, or the author's address's share of it, is full (or the message was
 * pushed out of it for someone who had less). `in_flight`: this author already has their share.
 */
export type PoolVerdict = ({ ok: true } & SanitizeResult) | { ok: false; reason: 'over_budget' | 'busy' | 'in_flight' };

type How = Pick<SanitizeTask, 'format' | 'sanitize'>;

/** A message in the pool: waiting in its user's queue, then running in piscina. */
type Job = {
  text: string;
  how: How;
  budgetMs: number;
  user: string;
  address: string;
  done: (verdict: PoolVerdict) => void;
  failed: (error: unknown) => void;
};

/** The key of work with no author (the start-up self-check, tests, the bench): no per-user or per-address share. */
const NOBODY = '';

/** The start-up self-check's budget: generous, it only has to prove the worker works. */
const SELF_CHECK_BUDGET_MS = 30_000;

export class SanitizerPool {
  readonly #pool: Piscina<SanitizeTask, SanitizeResult>;
  readonly #budgetMs: number;
  readonly #workers: number;
  /** Running + waiting messages may not exceed this (piscina does not bound abortable tasks by maxQueue). */
  readonly #capacity: number;
  readonly #perUser: number;
  readonly #perAddress: number;
  /** Waiting messages, a queue per user; the Map's order is the round: the next user's first message runs next. */
  readonly #waiting = new Map<string, Job[]>();
  /** Running + waiting messages per user, per address, and in all. */
  readonly #byUser = new Map<string, number>();
  readonly #byAddress = new Map<string, number>();
  #inFlight = 0;
  /** Messages handed to piscina: at most one per worker, so piscina never queues (the queue is ours, and fair). */
  #running = 0;
  /** Workers terminated for a message over budget (replaced by piscina). */
  replaced = 0;

  constructor({ workers, budgetMs, maxQueue, workerHeapMb, maxInFlightPerUser, maxInFlightPerAddress }: PoolOptions) {
    this.#budgetMs = budgetMs;
    this.#workers = workers;
    this.#capacity = workers + maxQueue;
    this.#perUser = maxInFlightPerUser ?? Infinity;
    this.#perAddress = maxInFlightPerAddress ?? Infinity;
    this.#pool = new Piscina<SanitizeTask, SanitizeResult>({
      filename: fileURLToPath(new URL('./sanitize-worker.ts', import.meta.url)),
      minThreads: workers, // started (and warmed up) now, not on the first message
      maxThreads: workers,
      idleTimeout: Infinity,
      // Decision 004: each task must be its own macrotask in the worker, or the documents of
      // every task a worker runs back to back stay alive together (piscina's Atomics loop).
      atomics: 'disabled',
      resourceLimits: { maxOldGenerationSizeMb: workerHeapMb },
    });
    // A worker that dies outside a task (it should not) is replaced by piscina; do not crash the server.
    this.#pool.on('error', () => {});
  }

  /** HTML → the allowlist (the lab's `encoding` switch off; the self-check; tests). */
  sanitize(text: string, author?: Author): Promise<PoolVerdict> {
    return this.render(text, { format: 'html', sanitize: true }, author);
  }

  /**
   * `author`: whose share the message counts against (none: only the whole queue's bound).
   * `budgetMs`: the per-message budget, unless the caller (the start-up self-check) needs another.
   */
  render(text: string, how: How, author?: Author, budgetMs = this.#budgetMs): Promise<PoolVerdict> {
    const user = author?.user ?? NOBODY;
    const address = author ? limitKey(author.address) : NOBODY;
    if (author) {
      if (this.#count(this.#byUser, user) >= this.#perUser) return Promise.resolve({ ok: false, reason: 'in_flight' });
      if (this.#count(this.#byAddress, address) >= this.#perAddress && !this.#giveWay(user, (job) => job.address === address)) {
        return Promise.resolve({ ok: false, reason: 'busy' });
      }
    }
    if (this.#inFlight >= this.#capacity && !this.#giveWay(user, () => true)) return Promise.resolve({ ok: false, reason: 'busy' });
    return new Promise<PoolVerdict>((done, failed) => {
      const job: Job = { text, how, budgetMs, user, address, done, failed };
      this.#add(this.#byUser, user, 1);
      this.#add(this.#byAddress, address, 1);
      this.#inFlight += 1;
      const queue = this.#waiting.get(user);
      if (queue) queue.push(job);
      else this.#waiting.set(user, [job]);
      this.#next();
    });
  }

  /**
   * Makes room for `user` in a full scope: the user with the most messages in the pool who has
   * one waiting in that scope gives up their newest, if they hold more than `user` will with
   * this one. Never pushes out someone to below the newcomer, so nobody is refused for being
   * light; a running message is never stopped.
   */
  #giveWay(user: string, inScope: (job: Job) => boolean): boolean {
    let victim: { queue: Job[]; index: number; held: number } | undefined;
    for (const [other, queue] of this.#waiting) {
      if (other === user) continue;
      const held = this.#count(this.#byUser, other);
      if (victim && held <= victim.held) continue;
      const index = queue.findLastIndex(inScope);
      if (index !== -1) victim = { queue, index, held };
    }
    if (!victim || victim.held <= this.#count(this.#byUser, user) + 1) return false;
    const [job] = victim.queue.splice(victim.index, 1);
    if (victim.queue.length === 0) this.#waiting.delete(job!.user);
    this.#release(job!);
    job!.done({ ok: false, reason: 'busy' });
    return true;
  }

  /** Hands waiting messages to free workers, one user's first message at a time, in turn. */
  #next(): void {
    while (this.#running < this.#workers) {
      const first = this.#waiting.entries().next();
      if (first.done) return;
      const [user, queue] = first.value;
      const job = queue.shift()!;
      // To the back of the round (a Map keeps insertion order), or out of it.
      this.#waiting.delete(user);
      if (queue.length > 0) this.#waiting.set(user, queue);
      this.#running += 1;
      void this.#run(job).then(
        (verdict) => this.#finish(job, () => job.done(verdict)),
        (error: unknown) => this.#finish(job, () => job.failed(error)),
      );
    }
  }

  #finish(job: Job, answer: () => void): void {
    this.#running -= 1;
    this.#release(job);
    answer();
    this.#next();
  }

  async #run({ text, how, budgetMs }: Job): Promise<PoolVerdict> {
    const abort = new AbortController();
    // [start, end] as the worker's Date.now(), 0 until then. The end matters when this thread
    // was busy: the timer may fire before the finished task's result is read, and must not
    // mistake a message that finished in time for one still running.
    const times = new Float64Array(new SharedArrayBuffer(16));
    let timer: NodeJS.Timeout | undefined;
    const check = () => {
      const [start, end] = [times[0]!, times[1]!];
      const left = start === 0 || end !== 0 ? budgetMs : start + budgetMs - Date.now();
      if (left <= 0) abort.abort();
      else timer = setTimeout(check, left);
    };
    timer = setTimeout(check, budgetMs);
    try {
      const result = await this.#pool.run({ text, ...how, times }, { signal: abort.signal });
      return { ok: true, ...result };
    } catch (error) {
      if (abort.signal.aborted) {
        this.replaced += 1;
        return { ok: false, reason: 'over_budget' };
      }
      // The worker ran out of its heap (resourceLimits): the message was too costly.
      if ((error as { code?: string }).code === 'ERR_WORKER_OUT_OF_MEMORY') return { ok: false, reason: 'over_budget' };
      throw error;
    } finally {
      clearTimeout(timer);
    }
  }

  #count(counts: Map<string, number>, key: string): number {
    return counts.get(key) ?? 0;
  }

  #add(counts: Map<string, number>, key: string, delta: number): void {
    const value = this.#count(counts, key) + delta;
    if (value === 0) counts.delete(key);
    else counts.set(key, value);
  }

  #release(job: Job): void {
    this.#add(this.#byUser, job.user, -1);
    this.#add(this.#byAddress, job.address, -1);
    this.#inFlight -= 1;
  }

  /**
   * Fail closed at start (as decision 004's isSupported check did on the main thread): every
   * worker must load and remove a known payload, or the server does not start. Also means the
   * workers are loaded and warm before the first user's message.
   */
  async ready(): Promise<void> {
    // Abortable tasks only go to idle workers, so these land on one worker each.
    // A cold worker's first call compiles DOMPurify and jsdom's parser: on a busy machine that
    // alone can exceed the per-message budget, which is for messages, not for warming up.
    // Both halves of the work, on every worker: DOMPurify removes a known payload from HTML, and
    // Markdown is rendered with raw HTML encoded.
    const probes: Array<[string, How, string]> = [
      ['<img src=x onerror=alert(1)><b>ok</b>', { format: 'html', sanitize: true }, '<b>ok</b>'],
      ['<img src=x onerror=alert(1)>**ok**', { format: 'markdown', sanitize: true }, '&lt;img src=x onerror=alert(1)&gt;<strong>ok</strong>'],
    ];
    for (const [input, how, expected] of probes) {
      const verdicts = await Promise.all(Array.from({ length: this.#workers }, () => this.render(input, how, undefined, SELF_CHECK_BUDGET_MS)));
      for (const verdict of verdicts) {
        if (!verdict.ok || verdict.html !== expected || !verdict.visible) {
          throw new Error(`The sanitizer workers failed their self-check (${JSON.stringify(verdict)}); refusing to start without a sanitizer.`);
        }
      }
    }
  }

  /** Heap in use by each worker, measured inside it after yielding (bench, tests). */
  async heapUsed(): Promise<number[]> {
    const runs = Array.from(
      { length: this.#pool.threads.length },
      () => this.#pool.run(undefined as unknown as SanitizeTask, { name: 'heapUsed' }) as unknown as Promise<number>,
    );
    return Promise.all(runs);
  }

  /** The current workers' thread ids (a replaced worker gets a new one). */
  threadIds(): number[] {
    return this.#pool.threads.map((worker) => worker.threadId);
  }

  async close(): Promise<void> {
    for (const queue of this.#waiting.values()) for (const job of queue) job.failed(new Error('The sanitizer pool is closed.'));
    this.#waiting.clear();
    await this.#pool.destroy();
  }
}
