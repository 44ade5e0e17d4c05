// The benchmark's outputs: the side-by-side table (stdout) and the latency chart (SVG,
// hand-written: no dependency).
import { KINDS, LABEL, ratesFor, type Kind } from './lib.ts';

export type Step = {
  ratePerClient: number;
  offeredPerSec: number;
  sentPerSec: number;
  deliveredPerSec: number;
  deliveredPct: number;
  p50: number;
  p99: number;
  serverCpuPct: number;
  serverCpuUsPerDelivery: number;
  loadgenCpuPct: number;
  errors: number;
  closed: number;
  held: boolean;
};
type Failed = { error: string };
type Storm = { handshakes: number; failures: number; perSec: number; serverCpuPct: number; loadgenCpuPct: number };
type FanoutRun = { clients: number; steps: Step[] };
type Memory = { baseRssMB: number; steps: Array<{ connections: number; rssMB: number; perConnectionKB: number }>; openSeconds: number };
type Login = { users: number; registerPerSec: number; loginPerSec: number; loginSeconds: number; serverCpuPct: number; loadgenCpuPct: number };
type HostilePhase = {
  attack: boolean;
  observerMessages: number;
  deliveredPct: number;
  p50: number;
  p99: number;
  max: number;
  observerRefused: number;
  attackerFrames: number;
  attackerRefused: number;
  serverCpuPct: number;
};
type Hostile = { observers: number; everyMs: number; measureMs: number; burst: number; ratePerSec: number; calm: HostilePhase; attacked: HostilePhase };
type PoolRun = { workers: number; count: number; msgsPerSec: number; mainThreadMsgsPerSec: number; workerHeapMB: number[] };
type SanitizeRun = { count: number; growthMB: number; steadyGrowthMB: number; msgsPerSec: number; rssMB: { start: number; end: number } };

export type Results = {
  date: string;
  quick: boolean;
  node: string;
  ws: string;
  socketio: string;
  cpus: number;
  cpuModel: string;
  profile: { fanout: { rates: Record<number, number[]>; clients: number[] } } & Record<string, unknown>;
  hashParams: { memory: number; passes: number; parallelism: number };
  login: Login | Failed | undefined;
  storm: Partial<Record<Kind, Storm | Failed>>;
  fanout: Partial<Record<Kind, Record<number, FanoutRun | Failed>>>;
  memory: Partial<Record<Kind, Memory | Failed>>;
  sanitize: { html: SanitizeRun; plain: SanitizeRun; sync: { count: number; retainedInJobPerMessageKB: number }; pool?: PoolRun } | undefined;
  hostile?: Hostile | Failed | undefined;
  seconds?: number;
};

const ok = <T extends object>(value: T | Failed | undefined): value is T => value !== undefined && !('error' in value);
const int = (n: number): string => (Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : '—');
const f1 = (n: number): string => (Number.isFinite(n) ? n.toFixed(1) : '—');

/** Highest held step; undefined when the first step already failed. */
function held(run: FanoutRun): Step | undefined {
  let best: Step | undefined;
  for (const step of run.steps) if (step.held) best = step;
  return best;
}

function ratio(parley: number | undefined, other: number | undefined, higherIsBetter: boolean, otherBelow?: number): string {
  if (parley === undefined || !Number.isFinite(parley)) return '—';
  if (other === undefined) return otherBelow !== undefined && parley > 0 ? `> ${(parley / otherBelow).toFixed(1)}×` : '—';
  if (!Number.isFinite(other) || other === 0) return '—';
  return `${(higherIsBetter ? parley / other : parley / other).toFixed(2)}×`;
}

export function renderTable(r: Results): string {
  const rows: string[][] = [['', ...KINDS.map((k) => LABEL[k]), 'Parley/bare', 'Parley/socket.io']];
  const add = (label: string, cells: Partial<Record<Kind, string>>, vsBare = '', vsSio = ''): void =>
    void rows.push([label, ...KINDS.map((k) => cells[k] ?? '—'), vsBare, vsSio]);
  const per = <T>(pick: (k: Kind) => T | undefined) => Object.fromEntries(KINDS.map((k) => [k, pick(k)])) as Record<Kind, T | undefined>;

  // 1. reconnect storm
  const storm = per((k) => (ok(r.storm[k]) ? (r.storm[k] as Storm) : undefined));
  add(
    '1 reconnect storm: handshakes/s',
    per((k) => (storm[k] ? int(storm[k]!.perSec) : undefined)) as never,
    ratio(storm.parley?.perSec, storm.bare?.perSec, true),
    ratio(storm.parley?.perSec, storm.socketio?.perSec, true),
  );
  add('  server CPU % / load-gen CPU %', per((k) => (storm[k] ? `${int(storm[k]!.serverCpuPct)} / ${int(storm[k]!.loadgenCpuPct)}` : undefined)) as never);

  // 2. login rate (Parley only)
  if (ok(r.login)) {
    const l = r.login as Login;
    add(
      `2 logins/s (argon2id m=${r.hashParams.memory / 1024} MiB t=${r.hashParams.passes} p=${r.hashParams.parallelism})`,
      {
        parley: `${f1(l.loginPerSec)} (${l.users} in ${f1(l.loginSeconds)} s)`,
      },
      'not compared',
      '',
    );
  }

  // 3. fan-out
  for (const clients of r.profile.fanout.clients) {
    const runs = per((k) => {
      const run = r.fanout[k]?.[clients];
      return ok(run) ? (run as FanoutRun) : undefined;
    });
    const heldStep = per((k) => (runs[k] ? held(runs[k]!) : undefined));
    const lowest = clients * clients * ratesFor(r.profile.fanout, clients)[0]!;
    const heldValue = (k: Kind) => heldStep[k]?.offeredPerSec;
    // The ladder's top step is the highest rate inside Parley's per-user limit: a server that
    // holds it may hold more, so a ratio between two servers that both hold it is a lower bound.
    const top = clients * clients * ratesFor(r.profile.fanout, clients).at(-1)!;
    const fanRatio = (other: Kind): string => {
      const text = ratio(heldValue('parley'), heldValue(other), true, runs[other] ? lowest : undefined);
      return heldValue('parley') === top && heldValue(other) === top ? `≥ ${text} (both held the top step)` : text;
    };
    add(
      `3 fan-out ${clients} clients: held step (deliveries/s)`,
      per((k) => (runs[k] ? (heldStep[k] ? int(heldStep[k]!.offeredPerSec) : `none (< ${int(lowest)})`) : undefined)) as never,
      fanRatio('bare'),
      fanRatio('socketio'),
    );
    add('  at held step: p50 / p99 ms', per((k) => (heldStep[k] ? `${f1(heldStep[k]!.p50)} / ${f1(heldStep[k]!.p99)}` : undefined)) as never);
    add('  at held step: server CPU µs/delivery', per((k) => (heldStep[k] ? f1(heldStep[k]!.serverCpuUsPerDelivery) : undefined)) as never);
    add(
      '  at held step: server / load-gen CPU %',
      per((k) => (heldStep[k] ? `${int(heldStep[k]!.serverCpuPct)} / ${int(heldStep[k]!.loadgenCpuPct)}` : undefined)) as never,
    );
    // The first step above the held one (or the first, when none held).
    const failed = per((k) => {
      const steps = runs[k]?.steps ?? [];
      const top = heldStep[k];
      return steps.find((s) => !s.held && (!top || s.offeredPerSec > top.offeredPerSec));
    });
    add(
      '  next step (not held): offered, delivered %, p99 ms',
      per((k) =>
        runs[k] ? (failed[k] ? `${int(failed[k]!.offeredPerSec)}, ${f1(failed[k]!.deliveredPct)} %, ${f1(failed[k]!.p99)}` : 'all held (top step)') : undefined,
      ) as never,
    );
    // A load generator near a full core is the ceiling there, not the server.
    add(
      '  … and there: server / load-gen CPU %',
      per((k) =>
        failed[k]
          ? `${int(failed[k]!.serverCpuPct)} / ${int(failed[k]!.loadgenCpuPct)}${failed[k]!.loadgenCpuPct >= 90 ? ' (load-gen saturated)' : ''}`
          : undefined,
      ) as never,
    );
    const first = per((k) => runs[k]?.steps[0]);
    add(
      `  CPU µs/delivery at ${int(lowest)}/s (all servers)`,
      per((k) => (first[k] ? f1(first[k]!.serverCpuUsPerDelivery) : undefined)) as never,
      ratio(first.parley?.serverCpuUsPerDelivery, first.bare?.serverCpuUsPerDelivery, false),
      ratio(first.parley?.serverCpuUsPerDelivery, first.socketio?.serverCpuUsPerDelivery, false),
    );
  }

  // 4. memory
  const mem = per((k) => (ok(r.memory[k]) ? (r.memory[k] as Memory) : undefined));
  const counts = [...new Set(KINDS.flatMap((k) => mem[k]?.steps.map((s) => s.connections) ?? []))].sort((a, b) => a - b);
  for (const n of counts) {
    const kb = per((k) => mem[k]?.steps.find((s) => s.connections === n)?.perConnectionKB);
    add(
      `4 idle memory at ${int(n)} connections: KB RSS each`,
      per((k) => (kb[k] !== undefined ? f1(kb[k]!) : undefined)) as never,
      ratio(kb.parley, kb.bare, false),
      ratio(kb.parley, kb.socketio, false),
    );
  }

  // 5. sanitizer
  if (r.sanitize) {
    const { html, plain, sync } = r.sanitize;
    add(`5 sanitizer, ${int(html.count)} HTML msgs: msgs/s, heap growth`, { parley: `${int(html.msgsPerSec)}, ${html.growthMB.toFixed(2)} MB` });
    add(`  ${int(plain.count)} plain-text msgs: msgs/s, heap growth`, { parley: `${int(plain.msgsPerSec)}, ${plain.growthMB.toFixed(2)} MB` });
    add(`  RSS start → end (HTML run)`, { parley: `${int(html.rssMB.start)} → ${int(html.rssMB.end)} MB` });
    add(`  sync-loop artefact (${int(sync.count)} in one job)`, { parley: `${sync.retainedInJobPerMessageKB.toFixed(1)} KB/msg held` });
    const pool = r.sanitize.pool;
    if (pool) {
      add(`  HTML through the worker pool (${pool.workers} workers) vs. main thread: msgs/s`, {
        parley: `${int(pool.msgsPerSec)} vs. ${int(pool.mainThreadMsgsPerSec)}`,
      });
      add(`  worker heap after yielding, start → ⅓ → ⅔ → end`, { parley: `${pool.workerHeapMB.map(f1).join(' → ')} MB` });
    }
  }

  // 6. hostile sender (Parley only)
  if (ok(r.hostile)) {
    const h = r.hostile as Hostile;
    const cell = (p: HostilePhase) => `${f1(p.p50)} / ${f1(p.p99)} ms, ${f1(p.deliveredPct)} %, ${p.observerRefused} refused`;
    add(`6 hostile sender: ${h.observers} observers' lobby p50 / p99, delivered, refused — calm`, { parley: cell(h.calm) }, 'not compared');
    add(`  while one account sends the costliest messages (burst ${h.burst}, then ${h.ratePerSec}/s)`, { parley: cell(h.attacked) });
    add('  attacker frames sent / refused; server CPU %', {
      parley: `${h.attacked.attackerFrames} / ${h.attacked.attackerRefused}; ${int(h.attacked.serverCpuPct)} %`,
    });
  }

  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((row) => row[c]!.length)));
  const line = (row: string[]): string => row.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join('  ');
  return [
    `Parley benchmark${r.quick ? ' (--quick)' : ''} — ${r.date}, Node ${r.node}, ws ${r.ws}, socket.io ${r.socketio}, ${r.cpus} × ${r.cpuModel}`,
    'Same TLS certificate (ECDSA P-256), loopback, one load-generator process; CPU % = % of one core.',
    'Held step: the highest step with ≥ 95 % delivered and p99 ≤ 50 ms (the climb stops after two steps not held);',
    'deliveries/s = clients × clients × per-client rate.',
    '',
    line(rows[0]!),
    widths.map((w) => '-'.repeat(w)).join('  '),
    ...rows.slice(1).map(line),
  ].join('\n');
}

const COLORS: Record<Kind, string> = { parley: '#1b7f3b', bare: '#c0392b', socketio: '#2c5aa0' };

/** p99 (solid) and p50 (dashed) latency against offered deliveries/s, a panel per client count. */
export function renderSvg(r: Results): string {
  const panels = r.profile.fanout.clients;
  const W = 520;
  const H = 360;
  const m = { l: 78, r: 30, t: 40, b: 52 };
  const pw = W - m.l - m.r;
  const ph = H - m.t - m.b;
  const yMin = 0.5;
  const yMax = 5000;
  const y = (ms: number): number =>
    m.t + ph - ((Math.log10(Math.min(Math.max(ms, yMin), yMax)) - Math.log10(yMin)) / (Math.log10(yMax) - Math.log10(yMin))) * ph;
  const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;');
  const parts: string[] = [];
  panels.forEach((clients, p) => {
    const offered = ratesFor(r.profile.fanout, clients).map((rate) => rate * clients * clients);
    const xMin = Math.log2(offered[0]!);
    const xMax = Math.log2(offered[offered.length - 1]!);
    const x = (v: number): number => m.l + ((Math.log2(v) - xMin) / Math.max(1e-9, xMax - xMin)) * pw;
    const g: string[] = [`<g transform="translate(${p * W},0)">`];
    g.push(`<text x="${m.l}" y="22" font-size="14" font-weight="bold">Fan-out, ${clients} clients in one room</text>`);
    g.push(`<rect x="${m.l}" y="${m.t}" width="${pw}" height="${ph}" fill="none" stroke="#999"/>`);
    for (const ms of [1, 10, 50, 100, 1000]) {
      const dash = ms === 50 ? ' stroke-dasharray="6 3" stroke="#c0392b"' : ' stroke="#ddd"';
      g.push(`<line x1="${m.l}" x2="${m.l + pw}" y1="${y(ms).toFixed(1)}" y2="${y(ms).toFixed(1)}"${dash}/>`);
      g.push(`<text x="${m.l - 6}" y="${(y(ms) + 4).toFixed(1)}" font-size="11" text-anchor="end">${ms} ms</text>`);
    }
    for (const v of offered) {
      g.push(`<line x1="${x(v).toFixed(1)}" x2="${x(v).toFixed(1)}" y1="${m.t}" y2="${m.t + ph}" stroke="#eee"/>`);
      g.push(`<text x="${x(v).toFixed(1)}" y="${m.t + ph + 16}" font-size="11" text-anchor="middle">${v >= 1000 ? `${Math.round(v / 1000)}k` : v}</text>`);
    }
    g.push(`<text x="${m.l + pw / 2}" y="${H - 18}" font-size="12" text-anchor="middle">offered deliveries/s (log scale)</text>`);
    g.push(`<text transform="translate(14,${m.t + ph / 2}) rotate(-90)" font-size="12" text-anchor="middle">latency, p99 solid / p50 dashed</text>`);
    KINDS.forEach((kind, i) => {
      const run = r.fanout[kind]?.[clients];
      if (!ok(run)) return;
      const steps = (run as FanoutRun).steps;
      for (const [key, dash] of [
        ['p99', ''],
        ['p50', ' stroke-dasharray="4 3"'],
      ] as const) {
        const pts = steps.map((s) => `${x(s.offeredPerSec).toFixed(1)},${y(s[key]).toFixed(1)}`).join(' ');
        g.push(`<polyline points="${pts}" fill="none" stroke="${COLORS[kind]}" stroke-width="2"${dash}/>`);
      }
      for (const s of steps) {
        g.push(
          `<circle cx="${x(s.offeredPerSec).toFixed(1)}" cy="${y(s.p99).toFixed(1)}" r="3.5" fill="${s.held ? COLORS[kind] : '#fff'}" stroke="${COLORS[kind]}"><title>${esc(`${LABEL[kind]}: offered ${s.offeredPerSec}/s, delivered ${Math.round(s.deliveredPerSec)}/s (${s.deliveredPct.toFixed(1)} %), p50 ${s.p50} ms, p99 ${s.p99} ms, server CPU ${Math.round(s.serverCpuPct)} %, load-gen CPU ${Math.round(s.loadgenCpuPct)} %`)}</title></circle>`,
        );
      }
      g.push(`<line x1="${m.l + 10}" x2="${m.l + 30}" y1="${m.t + 14 + i * 16}" y2="${m.t + 14 + i * 16}" stroke="${COLORS[kind]}" stroke-width="2"/>`);
      g.push(`<text x="${m.l + 36}" y="${m.t + 18 + i * 16}" font-size="12">${LABEL[kind]}</text>`);
    });
    g.push('</g>');
    parts.push(g.join('\n'));
  });
  const total = W * panels.length;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${total}" height="${H + 20}" viewBox="0 0 ${total} ${H + 20}" font-family="system-ui, sans-serif">`,
    `<rect width="100%" height="100%" fill="#fff"/>`,
    ...parts,
    `<text x="8" y="${H - 2}" font-size="10" fill="#555">${esc(`${r.date}${r.quick ? ' (--quick)' : ''}, Node ${r.node}, ws ${r.ws}, ${r.cpus} CPUs`)}</text>`,
    `<text x="8" y="${H + 12}" font-size="10" fill="#555">filled dot = step held (≥ 95 % delivered and p99 ≤ 50 ms, the red dashed line)</text>`,
    '</svg>',
    '',
  ].join('\n');
}
