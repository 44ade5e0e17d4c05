// Message rendering and HTML sanitizing off the event loop: a small pool of worker threads
// (piscina), each with its own markdown-it and jsdom window (sanitize-worker.ts), and a time
// budget per message. The event loop that
// reads every socket and fans out every message never parses HTML, so one user's costly
// message delays nobody else's delivery. Why and how much: docs/decisions/011-sanitizer-worker-pool.md.
//
// The budget counts from the moment a worker starts the message (the worker writes the time
// into a small shared buffer the task carries; a timer checks it), not from when it was
// queued: a message that waited behind others is not refused for their cost. (A MessagePort
// per task would say the same, at 3× the round-trip cost.) A parse cannot be interrupted from inside, so a message over budget
// is aborted, which terminates its worker; piscina starts a replacement.
import { fileURLToPath } from 'node:url';
import { Piscina } from 'piscina';
import type { SanitizeResult, SanitizeTask } from './sanitize-worker.ts';

export type PoolOptions = {
  /** Worker threads (SANITIZE_WORKERS). */
  workers: number;
  /** Wall-clock time one message may take inside a worker (SANITIZE_BUDGET_SECONDS). */
  budgetMs: number;
  /** Messages that may wait for a worker; past this the pool answers `busy`. */
  maxQueue: number;
  /** A worker's heap is bounded too: a message that makes it grow past this ends that worker (→ `over_budget`). */
  workerHeapMb: number;
};

export type PoolVerdict = ({ ok: true } & SanitizeResult) | { ok: false; reason: 'over_budget' | 'busy' };

/** The start-up self-check's budget: generous, it only has to prove the worker works. */
const SELF_CHECK_BUDGET_MS = 30_000;

export class SanitizerPool {
  readonly #pool: Piscina<SanitizeTask, SanitizeResult>;
  readonly #budgetMs: number;
  readonly #workers: number;
  /** Running + waiting messages may not exceed this (piscina does not bound abortable tasks by maxQueue). */
  readonly #capacity: number;
  #inFlight = 0;
  /** Workers terminated for a message over budget (replaced by piscina). */
  replaced = 0;

  constructor({ workers, budgetMs, maxQueue, workerHeapMb }: PoolOptions) {
    this.#budgetMs = budgetMs;
    this.#workers = workers;
    this.#capacity = workers + maxQueue;
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
  sanitize(text: string, budgetMs = this.#budgetMs): Promise<PoolVerdict> {
    return this.render(text, { format: 'html', sanitize: true }, budgetMs);
  }

  /** `budgetMs`: the per-message budget, unless the caller (the start-up self-check) needs another. */
  async render(text: string, how: Pick<SanitizeTask, 'format' | 'sanitize'>, budgetMs = this.#budgetMs): Promise<PoolVerdict> {
    if (this.#inFlight >= this.#capacity) return { ok: false, reason: 'busy' };
    this.#inFlight += 1;
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
      this.#inFlight -= 1;
      clearTimeout(timer);
    }
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
    const probes: Array<[string, Pick<SanitizeTask, 'format' | 'sanitize'>, string]> = [
      ['<img src=x onerror=alert(1)><b>ok</b>', { format: 'html', sanitize: true }, '<b>ok</b>'],
      ['<img src=x onerror=alert(1)>**ok**', { format: 'markdown', sanitize: true }, '&lt;img src=x onerror=alert(1)&gt;<strong>ok</strong>'],
    ];
    for (const [input, how, expected] of probes) {
      const verdicts = await Promise.all(Array.from({ length: this.#workers }, () => this.render(input, how, SELF_CHECK_BUDGET_MS)));
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
    await this.#pool.destroy();
  }
}
