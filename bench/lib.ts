// Small helpers shared by the benchmark runner and the load generator.
import fs from 'node:fs';

export type Kind = 'parley' | 'bare' | 'socketio';
export const KINDS: readonly Kind[] = ['parley', 'bare', 'socketio'];
export const LABEL: Record<Kind, string> = { parley: 'Parley', bare: 'bare ws', socketio: 'socket.io' };

/** Linux clock ticks per second for /proc/<pid>/stat (getconf CLK_TCK; 100 on every common kernel). */
const CLK_TCK = 100;

/** CPU time (user + system, ms) of another process, from /proc/<pid>/stat. */
export function cpuMsOf(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name (which may contain spaces) start at ") ".
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  return ((utime + stime) * 1000) / CLK_TCK;
}

/** Resident set size of another process, in KB (VmRSS of /proc/<pid>/status). */
export function rssKbOf(pid: number): number {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const match = /VmRSS:\s+(\d+) kB/.exec(status);
  if (!match) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(match[1]);
}

/** This process's CPU time in ms. */
export function ownCpuMs(): number {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
}

/**
 * Latency histogram: 0.05 ms bins up to 100 ms, then 1 ms bins up to 60 s. Constant memory
 * for millions of samples; percentiles are exact to the bin width.
 */
export class Histogram {
  readonly #bins = new Uint32Array(2000 + 59_900 + 1);
  count = 0;
  add(ms: number): void {
    const i = ms < 100 ? Math.max(0, Math.floor(ms * 20)) : Math.min(2000 + Math.floor(ms - 100), this.#bins.length - 1);
    this.#bins[i]! += 1;
    this.count += 1;
  }
  percentile(p: number): number {
    if (this.count === 0) return NaN;
    const target = Math.ceil((p / 100) * this.count);
    let seen = 0;
    for (let i = 0; i < this.#bins.length; i++) {
      seen += this.#bins[i]!;
      if (seen >= target) return i < 2000 ? (i + 1) / 20 : 100 + (i - 2000) + 1;
    }
    return Infinity;
  }
}

/** Offered deliveries/s of the first step of a derived ladder: every server held ~10–16k at 200 and 500 clients. */
const FIRST_STEP_DELIVERIES = 10_000;
/** Per-client msg/s at the top of any ladder: inside Parley's default per-user limit (10/s). */
const MAX_RATE_PER_CLIENT = 8;

/**
 * The per-client send rates (messages/s) a fan-out room of `clients` is stepped through. Each room
 * size has its own ladder so every server holds its first step: deliveries/s grow with clients².
 * A room size without a ladder of its own (`--clients 1000`) gets one that starts at about
 * FIRST_STEP_DELIVERIES (the power of two at or below it) and doubles as often as the first ladder.
 */
export function ratesFor(fanout: { rates: Record<number, number[]> }, clients: number): number[] {
  const own = fanout.rates[clients];
  if (own) return own;
  const steps = Object.values(fanout.rates)[0]!.length;
  const first = 2 ** Math.floor(Math.log2(FIRST_STEP_DELIVERIES / (clients * clients)));
  // Stay inside Parley's per-user limit (10 msg/s), as the fixed ladders do.
  return Array.from({ length: steps }, (_, i) => first * 2 ** i).filter((rate) => rate <= MAX_RATE_PER_CLIENT);
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
