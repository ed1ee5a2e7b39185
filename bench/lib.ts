/**
 * Shared plumbing for the HTTP benchmarks: child servers on free ports, CPU
 * accounting, one in-process autocannon run, medians and RESULTS.md sections.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';

export const BENCH_DIR = dirname(fileURLToPath(import.meta.url));
export const ROOT = dirname(BENCH_DIR);
export const RESULTS_FILE = join(BENCH_DIR, 'RESULTS.md');

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// One free-port helper for tests and benchmarks.
export { freePort } from '../test/helpers/redis-server.js';

const CLK_TCK = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;
  } catch {
    return 100;
  }
})();

/** utime + stime of a process (all its threads) in milliseconds, from /proc. */
export function procCpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // fields[0] is field 3 (state); utime is field 14, stime field 15.
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLK_TCK;
}

/** Busy CPU time of the whole machine (all cores) in milliseconds, from /proc/stat. */
export function machineBusyMs(): number {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0];
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  const total = v.slice(0, 8).reduce((a, b) => a + b, 0);
  return ((total - v[3] - v[4]) * 1000) / CLK_TCK;
}

/**
 * Other engineers' processes share this machine: before a round, wait (up to
 * maxWaitMs) until everything else uses less than `threshold` % of one core over
 * a 1 s sample. Returns the last sample's busy % and the time waited.
 */
export async function waitQuiet(threshold = 15, maxWaitMs = 30_000, sampleMs = 1000): Promise<{ busyPct: number; waitedMs: number }> {
  const t0 = Date.now();
  for (;;) {
    const b0 = machineBusyMs();
    await sleep(sampleMs);
    const busyPct = ((machineBusyMs() - b0) / sampleMs) * 100;
    if (busyPct < threshold || Date.now() - t0 > maxWaitMs) return { busyPct, waitedMs: Date.now() - t0 };
  }
}

/** CPU of this (load-generator) process in milliseconds. */
export function selfCpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

export interface ChildServer {
  name: string;
  port: number;
  pid: number;
  child: ChildProcess;
  alive(): boolean;
  stop(): Promise<void>;
}

const live = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of live) {
    try {
      c.kill('SIGKILL');
    } catch {
      /* gone */
    }
  }
});
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    for (const c of live) c.kill('SIGKILL');
    process.exit(130);
  });
}

/**
 * Starts `node [nodeFlags] script args` with stdout to /dev/null (so logging
 * costs the server what it costs in production with a fast sink, and costs the
 * load generator nothing) or, with `stdoutFile`, appended to that file (a real
 * access log on disk), then polls `readyPath` until it answers.
 */
export async function startNodeServer(opts: {
  name: string;
  script: string;
  args: string[];
  port: number;
  nodeFlags?: string[];
  readyPath?: string;
  cwd?: string;
  /** Append the server's stdout to this file instead of /dev/null. */
  stdoutFile?: string;
}): Promise<ChildServer> {
  const out = opts.stdoutFile ? openSync(opts.stdoutFile, 'a') : openSync('/dev/null', 'w');
  const child = spawn(process.execPath, [...(opts.nodeFlags ?? []), opts.script, ...opts.args], {
    cwd: opts.cwd ?? ROOT,
    stdio: ['ignore', out, 'pipe'],
    env: { ...process.env, NODE_ENV: 'production' },
  });
  closeSync(out); // the child has its own copy
  live.add(child);
  let stderr = '';
  child.stderr!.on('data', (c: Buffer) => {
    stderr = (stderr + c.toString()).slice(-4000);
  });
  let exited = false;
  child.once('exit', (code, signal) => {
    exited = true;
    live.delete(child);
    if (!stopping) process.stderr.write(`!! ${opts.name} (pid ${child.pid}) exited unexpectedly: code ${code} signal ${signal}\n${stderr}\n`);
  });
  let stopping = false;
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (exited) throw new Error(`${opts.name} exited during start-up: ${stderr}`);
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`${opts.name} not ready on port ${opts.port} after 30 s: ${stderr}`);
    }
    try {
      const res = await fetch(`http://127.0.0.1:${opts.port}${opts.readyPath ?? '/'}`);
      await res.arrayBuffer();
      if (res.status < 500) break;
    } catch {
      /* not yet */
    }
    await sleep(100);
  }
  return {
    name: opts.name,
    port: opts.port,
    pid: child.pid!,
    child,
    alive: () => !exited,
    async stop() {
      if (exited) return;
      stopping = true;
      const done = new Promise<void>((r) => child.once('exit', () => r()));
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await done;
      clearTimeout(t);
    },
  };
}

export interface LoadOptions {
  port: number;
  path: string;
  connections: number;
  pipelining: number;
  durationS: number;
  /** Static headers (Host included). */
  headers?: Record<string, string>;
  /** Called for every request (fresh signatures); returns the headers to send. */
  perRequestHeaders?: () => Record<string, string>;
  /** Records every response's latency (autocannon's own histogram has 1 ms resolution). */
  latency?: LatencyHistogram;
}

/**
 * Response times with 1 µs resolution: one counter per microsecond up to 1 s,
 * exact values above. autocannon's `result.latency` percentiles are whole
 * milliseconds (its HDR histogram records integers), too coarse for a server
 * answering in 0.1-2 ms; its `response` event carries the float duration.
 */
export class LatencyHistogram {
  private readonly counts = new Uint32Array(1_000_000);
  private readonly slow: number[] = [];
  count = 0;
  /** Responses that were not 2xx (recorded too: they are answers the client waited for). */
  non2xx = 0;

  record(ms: number): void {
    const us = Math.round(ms * 1000);
    if (us < this.counts.length) this.counts[us < 0 ? 0 : us]++;
    else this.slow.push(us);
    this.count++;
  }

  /** The p-th percentile (0-100) in milliseconds, to the microsecond; NaN when empty. */
  percentile(p: number): number {
    if (this.count === 0) return NaN;
    const rank = Math.max(1, Math.ceil((p / 100) * this.count));
    let seen = 0;
    for (let us = 0; us < this.counts.length; us++) {
      seen += this.counts[us];
      if (seen >= rank) return us / 1000;
    }
    const slow = [...this.slow].sort((a, b) => a - b);
    return slow[Math.min(slow.length - 1, rank - seen - 1)] / 1000;
  }

  mean(): number {
    let sum = 0;
    for (let us = 0; us < this.counts.length; us++) if (this.counts[us]) sum += us * this.counts[us];
    for (const us of this.slow) sum += us;
    return this.count ? sum / this.count / 1000 : NaN;
  }
}

export interface RoundResult {
  rps: number;
  p50: number;
  p90: number;
  p99: number;
  total: number;
  non2xx: number;
  errors: number;
  timeouts: number;
  serverCpuPct: number;
  loadgenCpuPct: number;
  extraCpuPct?: number;
  /** Machine-wide busy CPU not accounted for by server, load generator (and redis): other people's work. */
  otherCpuPct: number;
}

/** One autocannon run in this process (no worker threads), with CPU use of both sides. */
export async function loadRound(opts: LoadOptions, serverPid: number, extraPid?: number): Promise<RoundResult> {
  const requests = opts.perRequestHeaders
    ? [
        {
          method: 'GET',
          path: opts.path,
          setupRequest: (req: { headers: Record<string, string> }) => {
            req.headers = opts.perRequestHeaders!();
            return req;
          },
        },
      ]
    : undefined;
  const s0 = procCpuMs(serverPid);
  const e0 = extraPid ? procCpuMs(extraPid) : 0;
  const c0 = selfCpuMs();
  const m0 = machineBusyMs();
  const t0 = performance.now();
  const run = autocannon({
    url: `http://127.0.0.1:${opts.port}${opts.path}`,
    connections: opts.connections,
    pipelining: opts.pipelining,
    duration: opts.durationS,
    headers: opts.headers,
    requests,
  } as never) as PromiseLike<unknown> & { on(event: string, fn: (...args: never[]) => void): void };
  if (opts.latency) {
    const h = opts.latency;
    run.on('response', (_client: unknown, status: number, _bytes: number, ms: number) => {
      h.record(ms);
      if (status < 200 || status > 299) h.non2xx++;
    });
  }
  const result = await run;
  const wall = performance.now() - t0;
  const s1 = procCpuMs(serverPid);
  const e1 = extraPid ? procCpuMs(extraPid) : 0;
  const c1 = selfCpuMs();
  const m1 = machineBusyMs();
  const r = result as unknown as {
    requests: { average: number; total: number };
    latency: { p50: number; p90: number; p99: number };
    non2xx: number;
    errors: number;
    timeouts: number;
  };
  return {
    rps: r.requests.average,
    p50: r.latency.p50,
    p90: r.latency.p90,
    p99: r.latency.p99,
    total: r.requests.total,
    non2xx: r.non2xx,
    errors: r.errors,
    timeouts: r.timeouts,
    serverCpuPct: ((s1 - s0) / wall) * 100,
    loadgenCpuPct: ((c1 - c0) / wall) * 100,
    ...(extraPid ? { extraCpuPct: ((e1 - e0) / wall) * 100 } : {}),
    otherCpuPct: ((m1 - m0 - (s1 - s0) - (c1 - c0) - (e1 - e0)) / wall) * 100,
  };
}

export interface RawLoadOptions {
  port: number;
  connections: number;
  durationS: number;
  /** The raw bytes of the next request to send (one complete HTTP/1.1 request, keep-alive). */
  nextRequest: () => Buffer;
  latency?: LatencyHistogram;
}

/** A complete HTTP/1.1 GET as bytes: request line, the given headers in order, blank line. */
export function rawGet(path: string, headers: Record<string, string>): Buffer {
  const lines = [`GET ${path} HTTP/1.1`];
  for (const [k, v] of Object.entries(headers)) lines.push(`${k}: ${v}`);
  lines.push('Connection: keep-alive', '', '');
  return Buffer.from(lines.join('\r\n'), 'latin1');
}

const CRLFCRLF = Buffer.from('\r\n\r\n');
const CL_UPPER = Buffer.from('\r\nContent-Length:');
const CL_LOWER = Buffer.from('\r\ncontent-length:');

/**
 * A minimal closed-loop HTTP/1.1 load generator in this process: `connections`
 * keep-alive sockets, each sending pre-built request bytes, waiting for the
 * response (pipelining 1) and sending the next. It does no per-request work
 * beyond one write, one header scan for Content-Length and one latency sample,
 * so it needs far less CPU per request than autocannon (which rebuilds the
 * request from an object when headers change per request, and parses responses
 * with a full HTTP parser). Responses must carry Content-Length (every server
 * benchmarked here does); anything else counts as an error and closes the socket.
 * Only responses completed within the duration are counted.
 */
export async function rawLoadRound(opts: RawLoadOptions, serverPid: number, extraPid?: number): Promise<RoundResult> {
  const { connect } = await import('node:net');
  const s0 = procCpuMs(serverPid);
  const e0 = extraPid ? procCpuMs(extraPid) : 0;
  const c0 = selfCpuMs();
  const m0 = machineBusyMs();
  let total = 0;
  let non2xx = 0;
  let errors = 0;
  let stopped = false;
  const sockets: Array<import('node:net').Socket> = [];
  const t0 = performance.now();
  const lat = opts.latency;
  const open = (): void => {
    const sock = connect({ host: '127.0.0.1', port: opts.port });
    sock.setNoDelay(true);
    sockets.push(sock);
    let buf: Buffer | undefined;
    let sentAt = 0;
    const send = () => {
      sentAt = performance.now();
      sock.write(opts.nextRequest());
    };
    sock.on('connect', send);
    sock.on('data', (chunk: Buffer) => {
      let b: Buffer = buf ? Buffer.concat([buf, chunk]) : chunk;
      buf = undefined;
      for (;;) {
        const end: number = b.indexOf(CRLFCRLF);
        if (end < 0) break;
        let at: number = b.indexOf(CL_UPPER);
        if (at < 0 || at > end) at = b.indexOf(CL_LOWER);
        if (at < 0 || at > end) {
          errors++;
          sock.destroy();
          return;
        }
        let i = at + CL_UPPER.length;
        while (b[i] === 0x20) i++;
        let length = 0;
        for (; b[i] >= 0x30 && b[i] <= 0x39; i++) length = length * 10 + b[i] - 0x30;
        const size: number = end + 4 + length;
        if (b.length < size) break;
        if (stopped) return;
        const status = (b[9] - 0x30) * 100 + (b[10] - 0x30) * 10 + (b[11] - 0x30);
        const ms = performance.now() - sentAt;
        total++;
        if (status < 200 || status > 299) non2xx++;
        if (lat) {
          lat.record(ms);
          if (status < 200 || status > 299) lat.non2xx++;
        }
        if (b.length === size) {
          send();
          return;
        }
        b = b.subarray(size);
        send();
      }
      buf = b;
    });
    sock.on('error', () => {
      if (!stopped) errors++;
    });
    sock.on('close', () => {
      if (!stopped) setTimeout(open, 10); // the server closed it: reconnect, as autocannon does
    });
  };
  for (let i = 0; i < opts.connections; i++) open();
  await sleep(opts.durationS * 1000);
  stopped = true;
  const wall = performance.now() - t0;
  const s1 = procCpuMs(serverPid);
  const e1 = extraPid ? procCpuMs(extraPid) : 0;
  const c1 = selfCpuMs();
  const m1 = machineBusyMs();
  for (const sock of sockets) sock.destroy();
  return {
    rps: (total / wall) * 1000,
    p50: lat ? lat.percentile(50) : NaN,
    p90: lat ? lat.percentile(90) : NaN,
    p99: lat ? lat.percentile(99) : NaN,
    total,
    non2xx,
    errors,
    timeouts: 0,
    serverCpuPct: ((s1 - s0) / wall) * 100,
    loadgenCpuPct: ((c1 - c0) / wall) * 100,
    ...(extraPid ? { extraCpuPct: ((e1 - e0) / wall) * 100 } : {}),
    otherCpuPct: ((m1 - m0 - (s1 - s0) - (c1 - c0) - (e1 - e0)) / wall) * 100,
  };
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

export function machine(): string {
  const pkg = JSON.parse(readFileSync(join(ROOT, 'node_modules/autocannon/package.json'), 'utf8')) as { version: string };
  const nproc = execFileSync('nproc').toString().trim();
  let commit = 'unknown';
  let dirty = '';
  try {
    commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT }).toString().trim();
    const st = execFileSync('git', ['status', '--porcelain', '--', 'src'], { cwd: ROOT }).toString().trim();
    if (st) dirty = ` + uncommitted src/ changes (${st.split('\n').length} files)`;
  } catch {
    /* no git */
  }
  return `nproc ${nproc} (${cpus()[0]?.model ?? '?'}), node ${process.version}, autocannon ${pkg.version}, ${process.platform}; load average at the end ${loadavg().map((x) => x.toFixed(2)).join(' ')}; kernelgate at ${commit}${dirty}`;
}

/** Replaces (or appends) the section between `<!-- BEGIN id -->` and `<!-- END id -->`. */
export function writeSection(id: string, body: string): void {
  const begin = `<!-- BEGIN ${id} -->`;
  const end = `<!-- END ${id} -->`;
  const block = `${begin}\n${body.trimEnd()}\n${end}`;
  let text = existsSync(RESULTS_FILE)
    ? readFileSync(RESULTS_FILE, 'utf8')
    : '# kernelgate benchmarks\n\nEach section below is written by the script named in it; rerun the command to refresh it.\n';
  const i = text.indexOf(begin);
  const j = text.indexOf(end);
  if (i >= 0 && j > i) text = text.slice(0, i) + block + text.slice(j + end.length);
  else text = `${text.trimEnd()}\n\n${block}\n`;
  writeFileSync(RESULTS_FILE, text.endsWith('\n') ? text : `${text}\n`);
}

export const fmt = (n: number, d = 0) => (Number.isFinite(n) ? n.toFixed(d) : String(n));

export function table(head: string[], rows: Array<Array<string | number>>): string {
  const line = (cells: Array<string | number>) => `| ${cells.join(' | ')} |`;
  return [line(head), line(head.map(() => '---')), ...rows.map(line)].join('\n');
}

/** Finds the pid of a process whose command line contains every needle (e.g. redis-server and its port). */
export function findPid(...needles: string[]): number | undefined {
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmd = readFileSync(`/proc/${entry}/cmdline`, 'utf8').replace(/\0/g, ' ');
      if (needles.every((n) => cmd.includes(n))) return Number(entry);
    } catch {
      /* gone */
    }
  }
  return undefined;
}

// ---------------------------------------------------------------- cpuprofile

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
  hitCount?: number;
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface ProfileSummary {
  totalMs: number;
  idleMs: number;
  top: Array<{ name: string; where: string; selfMs: number; pct: number }>;
  /** Inclusive (self + callees) time per function, each function counted once per sample. */
  inclusive: Array<{ name: string; where: string; totalMs: number; pct: number }>;
  byArea: Array<{ area: string; selfMs: number; pct: number }>;
}

function areaOf(url: string, name: string): string {
  if (name === '(garbage collector)') return '(garbage collector)';
  if (name === '(program)' || name === '(idle)') return name;
  if (!url) return '(native / builtin)';
  const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (nm) return nm[1];
  if (url.startsWith('node:')) {
    const m = /^node:(internal\/)?([^/]+)/.exec(url);
    return `node:${m ? (m[1] ?? '') + m[2] : url}`;
  }
  const src = /\/dist\/src\/(.+?)\.js$/.exec(url) ?? /\/src\/(.+?)\.ts$/.exec(url);
  if (src) return `kernelgate ${src[1]}`;
  const b = /\/bench\/(.+)$/.exec(url);
  if (b) return `bench ${b[1]}`;
  return url;
}

/** Self time per function (and per package/file) from a V8 .cpuprofile. */
export function summarizeProfile(path: string, topN = 25): ProfileSummary {
  const prof = JSON.parse(readFileSync(path, 'utf8')) as CpuProfile;
  const byId = new Map(prof.nodes.map((n) => [n.id, n]));
  const selfById = new Map<number, number>();
  for (let i = 0; i < prof.samples.length; i++) {
    const dt = (prof.timeDeltas[i + 1] ?? 0) / 1000;
    selfById.set(prof.samples[i], (selfById.get(prof.samples[i]) ?? 0) + dt);
  }
  const fn = new Map<string, { name: string; where: string; selfMs: number }>();
  const area = new Map<string, number>();
  let total = 0;
  let idle = 0;
  for (const [id, ms] of selfById) {
    const n = byId.get(id)!;
    const { functionName, url, lineNumber } = n.callFrame;
    const name = functionName || '(anonymous)';
    total += ms;
    if (name === '(idle)') {
      idle += ms;
      continue;
    }
    const short = url.replace(/^file:\/\//, '').replace(`${ROOT}/`, '');
    const where = url ? `${short}:${lineNumber + 1}` : '';
    const key = `${name}@${where}`;
    const e = fn.get(key) ?? { name, where, selfMs: 0 };
    e.selfMs += ms;
    fn.set(key, e);
    const a = areaOf(url, name);
    area.set(a, (area.get(a) ?? 0) + ms);
  }
  const busy = total - idle;
  // Inclusive time: walk each sample's stack once.
  const parent = new Map<number, number>();
  for (const n of prof.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const incl = new Map<string, { name: string; where: string; totalMs: number }>();
  const keyOf = (n: ProfileNode) => {
    const { functionName, url, lineNumber } = n.callFrame;
    const short = url.replace(/^file:\/\//, '').replace(`${ROOT}/`, '');
    return { key: `${functionName}@${short}:${lineNumber}`, name: functionName || '(anonymous)', where: url ? `${short}:${lineNumber + 1}` : '' };
  };
  for (let i = 0; i < prof.samples.length; i++) {
    const dt = (prof.timeDeltas[i + 1] ?? 0) / 1000;
    const leaf = byId.get(prof.samples[i]);
    if (!leaf || leaf.callFrame.functionName === '(idle)') continue;
    const seen = new Set<string>();
    for (let id: number | undefined = leaf.id; id !== undefined; id = parent.get(id)) {
      const k = keyOf(byId.get(id)!);
      if (k.name === '(root)' || seen.has(k.key)) continue;
      seen.add(k.key);
      const e = incl.get(k.key) ?? { name: k.name, where: k.where, totalMs: 0 };
      e.totalMs += dt;
      incl.set(k.key, e);
    }
  }
  return {
    inclusive: [...incl.values()]
      .sort((a, b) => b.totalMs - a.totalMs)
      .slice(0, 45)
      .map((e) => ({ ...e, pct: (e.totalMs / busy) * 100 })),
    totalMs: total,
    idleMs: idle,
    top: [...fn.values()]
      .sort((a, b) => b.selfMs - a.selfMs)
      .slice(0, topN)
      .map((e) => ({ ...e, pct: (e.selfMs / busy) * 100 })),
    byArea: [...area.entries()]
      .map(([a, ms]) => ({ area: a, selfMs: ms, pct: (ms / busy) * 100 }))
      .sort((a, b) => b.selfMs - a.selfMs),
  };
}
