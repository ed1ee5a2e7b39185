/**
 * Signed `GET /auth/test` through the real gateway against three baselines, in
 * the same run and the same harness: a bare node:http hello-world
 * (bench/bare-http.mjs), bare Koa (bench/bare-koa.mjs) and the Koa + @koa/router
 * floor with the gateway's middleware count (bench/koa-router-floor.mjs). Every
 * server gets the same requests with the same signed headers (the baselines
 * ignore them), the same readiness check, the same warm-up, and rounds that
 * alternate in ABBA order. Reported per server: req/s at 50 connections and
 * p50/p99 latency with 1 µs resolution at 1, 4 and 50 connections; ratios of
 * each gateway to each baseline (goal: ≥ 0.80 of the Koa + router floor).
 *
 *   node --import tsx bench/auth-baselines.ts [options]
 *
 *   --gateway DIR        a kernelgate checkout with its own dist/ (built unless --no-build);
 *                        repeat to measure builds side by side (e.g. the old commit in another
 *                        worktree and the current one), labelled by `git -C DIR rev-parse --short HEAD`
 *                        (default: this repository)
 *   --store S            memory | redis | both (default memory); redis starts a private
 *                        redis-server on a free port (test/helpers/redis-server.ts)
 *   --sign M             presigned (default): every request carries its own Date and signature,
 *                        taken from a pool of --pool pre-signed header sets (signed before the
 *                        round, never on the hot path), one after the other across all connections;
 *                        round: one signature per round (the gateway's date cache always hits)
 *   --pool N             pre-signed header sets (default 20000; more than the gateway's
 *                        4096-entry date cache, so every request is a date-cache miss)
 *   --connections L      connection counts, comma-separated (default 1,4,50)
 *   --rounds N           measured rounds per server and connection count (default 3)
 *   --duration S         seconds per round (default 5)
 *   --warmup S           warm-up per server at the largest connection count (default 3; 0 = none)
 *   --log-level L        gateway [log] level (default info: one access line per request)
 *   --log-sink S         file (default: gateway stdout appended to a file in a temp dir) | devnull
 *   --baselines L        comma-separated subset of http,koa,floor (default all three)
 *   --floor-shape A,R    the floor's pass-through app middlewares after its two wrappers, and route
 *                        stages before the handler (default 1,2: the gateway's shape at ad15a97; match
 *                        it to src/pipeline.ts if the stage count changes: since the pipeline
 *                        restructure a route is one router middleware, so the gateway's shape is 1,0)
 *   --loadgen G          raw (default): lib.ts rawLoadRound, keep-alive sockets sending pre-built
 *                        request bytes (a few µs of client CPU per request, so the client is not the
 *                        bottleneck); autocannon: lib.ts loadRound (in-process autocannon, setupRequest)
 *   --max-other P        a round in which other processes used > P % of a core is redone (default 40)
 *   --quiet-wait S       before each round wait up to S s for the machine to be < 15 % busy
 *                        (default 120; 0 = do not wait, e.g. for a smoke run on a busy machine)
 *   --no-build           skip `npx tsc -p tsconfig.json` in each gateway dir
 *   --no-write           do not update bench/RESULTS.md
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { signRequest } from '../src/signing/sign-request.js';
import {
  BENCH_DIR,
  LatencyHistogram,
  ROOT,
  findPid,
  fmt,
  freePort,
  loadRound,
  machine,
  rawGet,
  rawLoadRound,
  median,
  sleep,
  startNodeServer,
  table,
  waitQuiet,
  writeSection,
  type ChildServer,
  type RoundResult,
} from './lib.js';

type Store = 'memory' | 'redis';
type Baseline = 'http' | 'koa' | 'floor';

interface Options {
  gateways: string[];
  stores: Store[];
  storeArg: string;
  sign: 'presigned' | 'round';
  pool: number;
  connections: number[];
  rounds: number;
  durationS: number;
  warmupS: number;
  logLevel: string;
  logSink: 'file' | 'devnull';
  baselines: Baseline[];
  loadgen: 'raw' | 'autocannon';
  floorShape: [number, number];
  maxOtherPct: number;
  quietWaitS: number;
  build: boolean;
  write: boolean;
  command: string;
}

function parseOptions(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    options: {
      gateway: { type: 'string', multiple: true },
      store: { type: 'string' },
      sign: { type: 'string' },
      pool: { type: 'string' },
      connections: { type: 'string' },
      rounds: { type: 'string' },
      duration: { type: 'string' },
      warmup: { type: 'string' },
      'log-level': { type: 'string' },
      'log-sink': { type: 'string' },
      baselines: { type: 'string' },
      loadgen: { type: 'string' },
      'floor-shape': { type: 'string' },
      'max-other': { type: 'string' },
      'quiet-wait': { type: 'string' },
      'no-build': { type: 'boolean' },
      'no-write': { type: 'boolean' },
    },
    strict: true,
  });
  const storeArg = values.store ?? 'memory';
  const stores: Store[] = storeArg === 'both' ? ['memory', 'redis'] : storeArg === 'memory' || storeArg === 'redis' ? [storeArg] : [];
  if (stores.length === 0) throw new Error('--store must be memory, redis or both');
  const sign = values.sign ?? 'presigned';
  if (sign !== 'presigned' && sign !== 'round') throw new Error('--sign must be presigned or round');
  const logSink = values['log-sink'] ?? 'file';
  if (logSink !== 'file' && logSink !== 'devnull') throw new Error('--log-sink must be file or devnull');
  const loadgen = values.loadgen ?? 'raw';
  if (loadgen !== 'raw' && loadgen !== 'autocannon') throw new Error('--loadgen must be raw or autocannon');
  const baselines = (values.baselines ?? 'http,koa,floor').split(',').filter(Boolean) as Baseline[];
  for (const b of baselines) if (!['http', 'koa', 'floor'].includes(b)) throw new Error(`unknown baseline ${b}`);
  const connections = (values.connections ?? '1,4,50').split(',').map(Number);
  if (connections.some((c) => !Number.isInteger(c) || c < 1)) throw new Error('--connections: positive integers');
  const gateways = (values.gateway ?? [ROOT]).map((d) => resolve(d));
  for (const d of gateways) if (!existsSync(join(d, 'bin/kernelgate.js'))) throw new Error(`${d}: no bin/kernelgate.js`);
  return {
    gateways,
    stores,
    storeArg,
    sign,
    pool: Number(values.pool ?? 20_000),
    connections,
    rounds: Number(values.rounds ?? 3),
    durationS: Number(values.duration ?? 5),
    warmupS: Number(values.warmup ?? 3),
    logLevel: values['log-level'] ?? 'info',
    logSink,
    baselines,
    loadgen,
    floorShape: (values['floor-shape'] ?? '1,2').split(',').map(Number) as [number, number],
    maxOtherPct: Number(values['max-other'] ?? 40),
    quietWaitS: Number(values['quiet-wait'] ?? 120),
    build: !values['no-build'],
    write: !values['no-write'],
    command: `node --import tsx bench/auth-baselines.ts${argv.length ? ` ${argv.join(' ')}` : ''}`,
  };
}

const ACCESS_KEY = 'AKIABENCH00000000001';
const SECRET_KEY = 'kernelgateBenchSecretKey0000000000000001';
const PATH = '/auth/test';
/** The same Host header for every server, so every server gets byte-identical requests. */
const HOST = 'kernelgate.bench:8080';
const HIGH_LIMIT = 1_000_000_000; // × 900 s × 1000 stays below 2^53

const BASELINES: Record<Baseline, { label: string; script: string; args: (port: number) => string[] }> = {
  http: { label: 'node:http', script: 'bare-http.mjs', args: (p) => ['--port', String(p)] },
  koa: { label: 'koa', script: 'bare-koa.mjs', args: (p) => ['--port', String(p)] },
  floor: { label: 'koa+router floor', script: 'koa-router-floor.mjs', args: (p) => ['--port', String(p)] },
};

interface Slot extends RoundResult {
  round: number;
  connections: number;
  lat: { p50: number; p90: number; p99: number; mean: number; count: number };
  serverCpuUsPerReq: number;
  loadgenCpuUsPerReq: number;
  quietPct: number;
  logBytes?: number;
}

interface Target {
  label: string;
  kind: 'baseline' | 'gateway';
  baseline?: Baseline;
  store?: Store;
  dir?: string;
  commit?: string;
  server: ChildServer;
  start: () => Promise<ChildServer>;
  logFile?: string;
  slots: Slot[];
  discarded: Slot[];
  restarts: number;
  storeSeen?: string;
}

/** `git -C dir rev-parse --short HEAD`, with `+` when src/ has uncommitted changes. */
function commitOf(dir: string): string {
  try {
    const sha = execFileSync('git', ['-C', dir, 'rev-parse', '--short', 'HEAD']).toString().trim();
    const dirty = execFileSync('git', ['-C', dir, 'status', '--porcelain', '--', 'src']).toString().trim();
    return dirty ? `${sha}+` : sha;
  } catch {
    return basename(dir);
  }
}

function signedHeaders(date?: string): Record<string, string> {
  const { headers } = signRequest({ method: 'GET', target: PATH, host: HOST, accessKey: ACCESS_KEY, secretKey: SECRET_KEY, date });
  return { host: HOST, ...headers };
}

/**
 * `n` signed header sets, each with its own Date: consecutive milliseconds
 * ending now, plus a counter in the microsecond digits (the Python SDK sends
 * isoformat() with microseconds), all within the gateway's ±15 min skew.
 */
function presign(n: number): Array<Record<string, string>> {
  const base = Date.now() - n;
  const out: Array<Record<string, string>> = new Array(n);
  for (let i = 0; i < n; i++) {
    const iso = new Date(base + i).toISOString();
    out[i] = signedHeaders(`${iso.slice(0, -1)}${String(i % 1000).padStart(3, '0')}+00:00`);
  }
  return out;
}

function get(port: number, path: string, headers: Record<string, string> = { host: HOST }): Promise<{ status: number; text: string }> {
  return new Promise((resolveGet, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path, method: 'GET', headers }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolveGet({ status: res.statusCode ?? 0, text }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** Every server must answer the signed request with 200 and `authorized: "yes"` before it is measured. */
async function checkOnce(t: Target): Promise<void> {
  const res = await get(t.server.port, PATH, signedHeaders());
  let authorized: unknown;
  try {
    authorized = (JSON.parse(res.text) as { authorized?: unknown }).authorized;
  } catch {
    /* not JSON */
  }
  if (res.status !== 200 || authorized !== 'yes') throw new Error(`${t.label}: signed GET ${PATH} answered ${res.status} ${res.text}`);
}

/** A signed difference in µs: +12, -3. */
const dus = (ms: number) => (Number.isFinite(ms) ? `${ms >= 0 ? '+' : '−'}${Math.abs(ms * 1000).toFixed(0)}` : '–');
const ms3 = (ms: number) => (Number.isFinite(ms) ? ms.toFixed(3) : '–');

async function main(o: Options): Promise<void> {
  if (o.build) {
    for (const dir of o.gateways) {
      process.stderr.write(`building ${dir}: npx tsc -p tsconfig.json\n`);
      execFileSync('npx', ['tsc', '-p', 'tsconfig.json'], { cwd: dir, stdio: ['ignore', 'ignore', 'inherit'] });
    }
  }
  const started = new Date();
  const levels = [...o.connections];
  const maxConn = Math.max(...levels);
  const serverCount = o.baselines.length + o.gateways.length * o.stores.length;
  const estimate = serverCount * (o.warmupS + 1 + o.rounds * levels.length * (o.durationS + 0.8));
  process.stderr.write(`${serverCount} servers × ${levels.length} connection counts × ${o.rounds} rounds × ${o.durationS} s: about ${fmt(estimate / 60, 1)} min if the machine stays quiet\n`);

  const tmp = mkdtempSync(join(tmpdir(), 'kg-bench-baselines-'));
  const keypairsDir = join(tmp, 'keypairs');
  mkdirSync(keypairsDir);
  writeFileSync(
    join(keypairsDir, `${ACCESS_KEY}.toml`),
    [`access_key = "${ACCESS_KEY}"`, `secret_key = "${SECRET_KEY}"`, 'role = "user"', 'domain = "default"', 'user = "bench@example.com"', `rate_limit = ${HIGH_LIMIT}`, 'is_active = true', ''].join('\n'),
  );

  let redis: { url: string; port: number; stop(): Promise<void> } | undefined;
  let redisPid: number | undefined;
  const targets: Target[] = [];
  try {
    if (o.stores.includes('redis')) {
      const { startRedisServer } = await import('../test/helpers/redis-server.js');
      redis = await startRedisServer();
      redisPid = findPid('redis-server', `:${redis.port}`) ?? findPid('redis-server', String(redis.port));
    }

    for (const b of o.baselines) {
      const port = await freePort();
      const { label, script, args } = BASELINES[b];
      const extra = b === 'floor' ? ['--app', String(o.floorShape[0]), '--route', String(o.floorShape[1])] : [];
      const start = () => startNodeServer({ name: label, script: join(BENCH_DIR, script), args: [...args(port), ...extra], port });
      targets.push({ label, kind: 'baseline', baseline: b, server: await start(), start, slots: [], discarded: [], restarts: 0 });
    }
    const labels = new Set<string>();
    for (const [gi, dir] of o.gateways.entries()) {
      const commit = commitOf(dir);
      for (const store of o.stores) {
        const port = await freePort();
        const config = join(tmp, `config-${gi}-${store}.toml`);
        writeFileSync(
          config,
          [
            '[keypairs]',
            `dir = ${JSON.stringify(keypairsDir)}`,
            '',
            '[ratelimit]',
            `store = "${store}"`,
            ...(store === 'redis' ? [`redis_url = "${redis!.url}"`] : []),
            `default_limit = ${HIGH_LIMIT}`,
            '',
            '[log]',
            `level = "${o.logLevel}"`,
            '',
          ].join('\n'),
        );
        let label = `gateway ${commit} ${store}`;
        if (labels.has(label)) label = `gateway ${commit} ${store} (${basename(dir)} #${gi + 1})`;
        labels.add(label);
        const logFile = o.logSink === 'file' ? join(tmp, `access-${gi}-${store}.log`) : undefined;
        const start = () =>
          startNodeServer({ name: label, script: join(dir, 'bin/kernelgate.js'), args: ['serve', '--config', config, '--port', String(port)], port, cwd: dir, stdoutFile: logFile });
        targets.push({ label, kind: 'gateway', store, dir, commit, server: await start(), start, logFile, slots: [], discarded: [], restarts: 0 });
      }
    }
    for (const t of targets) await checkOnce(t);

    // Which rate-limit store is each gateway really using?
    for (const t of targets.filter((x) => x.kind === 'gateway')) {
      const res = await get(t.server.port, '/health');
      let seen: unknown;
      try {
        seen = (JSON.parse(res.text) as { ratelimit?: unknown }).ratelimit;
      } catch {
        seen = res.text.slice(0, 200);
      }
      t.storeSeen = JSON.stringify(seen);
      const store = (seen as { store?: string } | undefined)?.store;
      if (store !== t.store) process.stderr.write(`!! ${t.label}: GET /health says ratelimit ${t.storeSeen}, expected store "${t.store}"\n`);
      else process.stderr.write(`${t.label}: GET /health → ratelimit ${t.storeSeen}\n`);
    }

    // Requests: the same bytes for every server in a round.
    let pool: Array<Record<string, string>> = [];
    let poolBytes: Buffer[] = [];
    let poolMadeAt = 0;
    let next = 0;
    const requestsForRound = (): { headers?: Record<string, string>; perRequestHeaders?: () => Record<string, string>; nextRequest: () => Buffer } => {
      if (o.sign === 'round') {
        const headers = signedHeaders();
        const bytes = rawGet(PATH, headers);
        return { headers, nextRequest: () => bytes };
      }
      // Re-sign the pool (outside the measurement) once it is a minute old: dates stay well within skew.
      if (Date.now() - poolMadeAt > 60_000) {
        const t0 = performance.now();
        pool = presign(o.pool);
        poolBytes = pool.map((h) => rawGet(PATH, h));
        poolMadeAt = Date.now();
        next = 0;
        process.stderr.write(`  signed ${o.pool} requests in ${fmt(performance.now() - t0)} ms\n`);
      }
      return { perRequestHeaders: () => pool[next++ % pool.length], nextRequest: () => poolBytes[next++ % poolBytes.length] };
    };

    const load = (t: Target, connections: number, durationS: number, latency?: LatencyHistogram) => {
      const { headers, perRequestHeaders, nextRequest } = requestsForRound();
      const extra = t.store === 'redis' ? redisPid : undefined;
      return o.loadgen === 'raw'
        ? rawLoadRound({ port: t.server.port, connections, durationS, nextRequest, latency }, t.server.pid, extra)
        : loadRound({ port: t.server.port, path: PATH, connections, pipelining: 1, durationS, latency, headers, perRequestHeaders }, t.server.pid, extra);
    };

    const measure = async (t: Target, round: number, connections: number): Promise<Slot> => {
      for (let attempt = 1; ; attempt++) {
        if (!t.server.alive()) {
          process.stderr.write(`restarting ${t.label}\n`);
          t.server = await t.start();
          t.restarts++;
          await checkOnce(t);
          if (o.warmupS > 0) await load(t, maxConn, o.warmupS).catch(() => undefined);
        }
        if (t.logFile) truncateSync(t.logFile, 0);
        const quiet = o.quietWaitS > 0 ? await waitQuiet(15, o.quietWaitS * 1000, 500) : { busyPct: NaN, waitedMs: 0 };
        const hist = new LatencyHistogram();
        let r: RoundResult;
        try {
          r = await load(t, connections, o.durationS, hist);
          await sleep(50);
          if (!t.server.alive()) throw new Error(`${t.label} died during the round`);
        } catch (error) {
          process.stderr.write(`round failed (${(error as Error).message}); attempt ${attempt}\n`);
          if (attempt >= 5) throw error;
          continue;
        }
        const slot: Slot = {
          ...r,
          round,
          connections,
          lat: { p50: hist.percentile(50), p90: hist.percentile(90), p99: hist.percentile(99), mean: hist.mean(), count: hist.count },
          serverCpuUsPerReq: r.total > 0 ? ((r.serverCpuPct / 100) * o.durationS * 1e6) / r.total : NaN,
          loadgenCpuUsPerReq: r.total > 0 ? ((r.loadgenCpuPct / 100) * o.durationS * 1e6) / r.total : NaN,
          quietPct: quiet.busyPct,
          ...(t.logFile ? { logBytes: statSync(t.logFile).size } : {}),
        };
        if (r.otherCpuPct > o.maxOtherPct && attempt < 5) {
          process.stderr.write(`  discarded ${t.label} @${connections}: other processes used ${fmt(r.otherCpuPct)} % of a core (> ${o.maxOtherPct}); redoing\n`);
          t.discarded.push(slot);
          continue;
        }
        if (r.non2xx > 0 || r.errors > 0 || r.timeouts > 0) {
          process.stderr.write(`!! ${t.label} @${connections}: non-2xx ${r.non2xx}, errors ${r.errors}, timeouts ${r.timeouts}\n`);
        }
        return slot;
      }
    };

    if (o.warmupS > 0) {
      for (const t of targets) {
        process.stderr.write(`warm-up ${t.label} ${o.warmupS} s at ${maxConn} connections\n`);
        await load(t, maxConn, o.warmupS);
      }
    }
    const order: string[] = [];
    let block = 0;
    for (let round = 1; round <= o.rounds; round++) {
      for (const connections of levels) {
        const seq = block++ % 2 === 0 ? targets : [...targets].reverse();
        if (order.length < 2) order.push(seq.map((t) => t.label).join(' → '));
        for (const t of seq) {
          const s = await measure(t, round, connections);
          t.slots.push(s);
          process.stderr.write(
            `round ${round}/${o.rounds} c=${String(connections).padStart(3)} ${t.label.padEnd(28)} ${fmt(s.rps).padStart(7)} req/s  ` +
              `p50 ${ms3(s.lat.p50)} p99 ${ms3(s.lat.p99)} ms  server ${fmt(s.serverCpuUsPerReq, 1)} µs/req loadgen ${fmt(s.loadgenCpuUsPerReq, 1)} µs/req  cpu server ${fmt(s.serverCpuPct)}% loadgen ${fmt(s.loadgenCpuPct)}%` +
              (s.extraCpuPct !== undefined ? ` redis ${fmt(s.extraCpuPct)}%` : '') +
              ` other ${fmt(s.otherCpuPct)}%` +
              (s.logBytes !== undefined ? ` log ${fmt(s.logBytes / Math.max(1, s.total))} B/req` : '') +
              '\n',
          );
        }
      }
    }
    for (const t of targets) await t.server.stop();

    report(o, targets, levels, maxConn, started, order, redisPid !== undefined);
  } finally {
    for (const t of targets) await t.server.stop().catch(() => {});
    await redis?.stop();
    rmSync(tmp, { recursive: true, force: true });
  }
}

interface Agg {
  rps: number;
  p50: number;
  p99: number;
  cpuUs: number;
  loadgen: number;
  loadgenUs: number;
  non2xx: number;
  errors: number;
  logBytesPerReq: number;
}

function aggregate(t: Target, connections: number): Agg {
  const s = t.slots.filter((x) => x.connections === connections);
  return {
    rps: median(s.map((x) => x.rps)),
    p50: median(s.map((x) => x.lat.p50)),
    p99: median(s.map((x) => x.lat.p99)),
    cpuUs: median(s.map((x) => x.serverCpuUsPerReq)),
    loadgen: median(s.map((x) => x.loadgenCpuPct)),
    loadgenUs: median(s.map((x) => x.loadgenCpuUsPerReq)),
    non2xx: s.reduce((a, x) => a + x.non2xx, 0),
    errors: s.reduce((a, x) => a + x.errors + x.timeouts, 0),
    logBytesPerReq: median(s.filter((x) => x.logBytes !== undefined).map((x) => x.logBytes! / Math.max(1, x.total))),
  };
}

function report(o: Options, targets: Target[], levels: number[], maxConn: number, started: Date, order: string[], withRedis: boolean): void {
  const nproc = execFileSync('nproc').toString().trim();
  const agg = new Map(targets.map((t) => [t, new Map(levels.map((c) => [c, aggregate(t, c)]))]));
  const A = (t: Target, c: number) => agg.get(t)!.get(c)!;
  const latencyLevels = [...levels].sort((a, b) => a - b);
  const boundByClient = (t: Target) => A(t, maxConn).loadgen >= 90;

  const mainTable = table(
    [
      'server',
      `req/s @${maxConn}`,
      `server CPU µs/req @${maxConn}`,
      ...latencyLevels.flatMap((c) => [`p50 ms @${c}`, `p99 ms @${c}`]),
      `loadgen CPU % @${maxConn}`,
      `loadgen µs/req @${maxConn}`,
      'non-2xx / errors',
    ],
    targets.map((t) => [
      t.label,
      fmt(A(t, maxConn).rps) + (boundByClient(t) ? ' ²' : ''),
      fmt(A(t, maxConn).cpuUs, 1),
      ...latencyLevels.flatMap((c) => [ms3(A(t, c).p50), ms3(A(t, c).p99)]),
      fmt(A(t, maxConn).loadgen),
      fmt(A(t, maxConn).loadgenUs, 1),
      `${levels.reduce((a, c) => a + A(t, c).non2xx, 0)} / ${levels.reduce((a, c) => a + A(t, c).errors, 0)}`,
    ]),
  );

  const baselines = targets.filter((t) => t.kind === 'baseline');
  const gateways = targets.filter((t) => t.kind === 'gateway');
  const floor = baselines.find((b) => b.baseline === 'floor');
  const ratioRows = gateways.map((g) => [
    g.label,
    ...baselines.map((b) => {
      const r = A(g, maxConn).rps / A(b, maxConn).rps;
      return b === floor ? `**${fmt(r, 3)}** ${r >= 0.8 ? '(goal met)' : '(goal ≥ 0.80)'}` : fmt(r, 3);
    }),
    ...(floor ? [fmt(A(g, maxConn).cpuUs / A(floor, maxConn).cpuUs, 2)] : []),
    ...(floor ? latencyLevels.filter((c) => c !== maxConn).map((c) => `${dus(A(g, c).p50 - A(floor, c).p50)} / ${dus(A(g, c).p99 - A(floor, c).p99)}`) : []),
  ]);
  const ratios = table(
    [
      'gateway',
      ...baselines.map((b) => `req/s @${maxConn} vs ${b.label}`),
      ...(floor ? ['server CPU per request vs floor'] : []),
      ...(floor ? latencyLevels.filter((c) => c !== maxConn).map((c) => `p50 / p99 over floor @${c} (µs)`) : []),
    ],
    ratioRows,
  );

  // Before / after: every later build of a store against the first build listed.
  const builds = [...new Set(gateways.map((g) => g.dir))];
  let beforeAfter = '';
  if (builds.length > 1) {
    const rows: Array<Array<string | number>> = [];
    for (const store of o.stores) {
      const same = gateways.filter((g) => g.store === store);
      const first = same[0];
      for (const g of same.slice(1)) {
        rows.push([
          store,
          `${first.commit} → ${g.commit}`,
          fmt(A(g, maxConn).rps / A(first, maxConn).rps, 3),
          dus((A(g, maxConn).cpuUs - A(first, maxConn).cpuUs) / 1000),
          ...latencyLevels.map((c) => `${dus(A(g, c).p50 - A(first, c).p50)} / ${dus(A(g, c).p99 - A(first, c).p99)}`),
        ]);
      }
    }
    beforeAfter = table(
      ['store', 'builds', `req/s @${maxConn} after / before`, `server CPU µs/req @${maxConn} Δ`, ...latencyLevels.map((c) => `Δ p50 / p99 @${c} (µs)`)],
      rows,
    );
  }

  const raw = table(
    ['round', 'conns', 'server', 'req/s', 'p50 ms', 'p90 ms', 'p99 ms', 'mean ms', 'requests', 'non-2xx', 'errors', 'server CPU %', 'server µs/req', 'loadgen CPU %', 'loadgen µs/req', ...(withRedis ? ['redis CPU %'] : []), 'other CPU %', 'busy before %', ...(o.logSink === 'file' ? ['log B/req'] : [])],
    targets.flatMap((t) =>
      [...t.slots.map((s) => ({ s, n: String(s.round) })), ...t.discarded.map((s) => ({ s, n: 'discarded' }))].map(({ s, n }) => [
        n,
        s.connections,
        t.label,
        fmt(s.rps, 1),
        ms3(s.lat.p50),
        ms3(s.lat.p90),
        ms3(s.lat.p99),
        ms3(s.lat.mean),
        s.total,
        s.non2xx,
        s.errors + s.timeouts,
        fmt(s.serverCpuPct),
        fmt(s.serverCpuUsPerReq, 1),
        fmt(s.loadgenCpuPct),
        fmt(s.loadgenCpuUsPerReq, 1),
        ...(withRedis ? [s.extraCpuPct !== undefined ? fmt(s.extraCpuPct) : '–'] : []),
        fmt(s.otherCpuPct),
        fmt(s.quietPct),
        ...(o.logSink === 'file' ? [s.logBytes !== undefined ? fmt(s.logBytes / Math.max(1, s.total)) : '–'] : []),
      ]),
    ),
  );

  const data = {
    script: 'auth-baselines',
    date: started.toISOString(),
    command: o.command,
    sign: o.sign,
    loadgen: o.loadgen,
    stores: o.stores,
    maxConn,
    commits: [...new Set(gateways.map((g) => g.commit))],
    servers: targets.map((t) => ({
      label: t.label,
      kind: t.kind,
      store: t.store,
      commit: t.commit,
      rps: Math.round(A(t, maxConn).rps),
      cpuUsPerReq: Number(A(t, maxConn).cpuUs.toFixed(1)),
      latency: Object.fromEntries(latencyLevels.map((c) => [c, { p50: A(t, c).p50, p99: A(t, c).p99 }])),
      vs: t.kind === 'gateway' ? Object.fromEntries(baselines.map((b) => [b.baseline, Number((A(t, maxConn).rps / A(b, maxConn).rps).toFixed(3))])) : undefined,
    })),
  };

  const signNote =
    o.sign === 'presigned'
      ? `every request carries its own \`Date\` and signature: ${o.pool} header sets signed before the round (consecutive milliseconds ending at signing time, a counter in the microsecond digits like the Python SDK's isoformat(); re-signed once a minute, outside the measurement), handed out one after the other across all connections (${o.loadgen === 'raw' ? 'as pre-built request bytes' : "through autocannon's `setupRequest`"}; no signing on the hot path). ${o.pool} distinct dates > the gateway's 4096-entry date cache: every request is a date-cache miss (the signing-key cache still hits: same day and host)`
      : 'one signature per round (signed with the current date just before the round): every request of a round carries the same `Date`, so the gateway’s date and signing-key caches always hit; the cheapest case for the verifier';
  const gatewayList = [...new Set(gateways.map((g) => `\`${g.commit}\` = ${g.dir === ROOT ? 'this checkout' : `\`${g.dir}\``}`))].join(', ');
  const body = [
    `## GET /auth/test — gateway vs node:http, Koa and the Koa + router floor (${o.stores.join(' and ')} store${o.stores.length > 1 ? 's' : ''}, ${o.sign === 'presigned' ? 'fresh Date and signature on every request' : 'one signature per round'}, access log ${o.logSink === 'file' ? 'to a file' : 'to /dev/null'})`,
    '',
    `- command: \`${o.command}\``,
    `- date: ${started.toISOString()}`,
    `- machine: ${machine()}`,
    `- gateways: ${gatewayList}; each run as \`node bin/kernelgate.js serve --config <tmp> --port N\` from its own directory (its own dist/), NODE_ENV=production; config = defaults except \`[log] level = "${o.logLevel}"\`, \`[keypairs] dir\`, \`[ratelimit] store\` and \`default_limit = ${HIGH_LIMIT}\`${withRedis ? ', `redis_url` = one private redis-server (--save "" --appendonly no) on a free port shared by the redis gateways' : ''}; the keypair has \`rate_limit = ${HIGH_LIMIT}\``,
    `- baselines (same node, same flags, from bench/): ${targets
      .filter((t) => t.kind === 'baseline')
      .map((t) => `${t.label} \`${BASELINES[t.baseline!].script}\``)
      .join(', ')}; the floor is Koa + @koa/router with the gateway's stage count for this route (${2 + o.floorShape[0]} app middlewares + router + ${o.floorShape[1]} route stages + handler; see its header)`,
    `- access log: ${o.logSink === 'file' ? `gateway stdout appended to a real file in a temp dir (truncated before each round; "log B/req" in the raw table = bytes written / requests answered), log level ${o.logLevel}` : `gateway stdout → /dev/null, log level ${o.logLevel}`}; baselines log nothing`,
    `- requests: the same for every server: signed \`GET ${PATH}\` with \`Host: ${HOST}\`, ${signNote}`,
    `- readiness: each server polled until it answers, then one signed GET ${PATH} must return 200 {"authorized":"yes"}; rate-limit store in use per GET /health: ${gateways.map((g) => `${g.label} ${g.storeSeen}`).join('; ')}`,
    `- load: ${o.loadgen === 'raw' ? 'bench/lib.ts rawLoadRound in the bench process (closed loop, keep-alive sockets writing pre-built request bytes, a Content-Length scan per response)' : 'autocannon in the bench process (no workers; per-request headers through `setupRequest`)'}, pipelining 1, connections ${latencyLevels.join(' / ')}, ${o.rounds} round(s) × ${o.durationS} s per server and connection count${o.warmupS > 0 ? ` after a ${o.warmupS} s warm-up per server at ${maxConn} connections` : ', no warm-up'}; blocks alternate in ABBA order (${order.join(' | ')} | …); figures are medians over rounds`,
    `- latency: ${o.loadgen === 'raw' ? 'from writing the request to having the whole response (performance.now())' : "every response's time from autocannon's `response` event (float ms)"}, into a 1 µs histogram (autocannon's own percentiles are whole milliseconds); at ${maxConn} connections it includes queueing in the saturated client`,
    `- CPU: utime+stime from /proc for the server (all threads), process.cpuUsage() for the load generator, over the round's wall time (100 % = one core; the machine has ${nproc}); "server CPU µs/req" = server CPU time / requests answered, the cost per request independent of the client; ² = load generator ≥ 90 % of a core at ${maxConn} connections, so that server's req/s is bounded by the client and the ratios against it are flattering to the gateway`,
    `- other load: ${o.quietWaitS > 0 ? `before each round the script waits (≤ ${o.quietWaitS} s) until the machine is < 15 % busy over 0.5 s` : 'no wait for a quiet machine (--quiet-wait 0)'}; a round in which other processes used more than ${o.maxOtherPct} % of one core is redone (≤ 4 times; listed as discarded in the raw table): ${targets.map((t) => `${t.label} ${t.discarded.length}`).join(', ')}; restarts: ${targets.map((t) => `${t.label} ${t.restarts}`).join(', ')}`,
    '',
    mainTable,
    '',
    `Ratios (gateway / baseline; goal ≥ 0.80 of the Koa + router floor at ${maxConn} connections; the latency columns are what the gateway adds over the floor):`,
    '',
    ratios,
    ...(beforeAfter ? ['', 'Before → after (later build minus the first `--gateway` given, same run; keep a hot-path change only if latency at 1 and 4 connections does not get worse):', '', beforeAfter] : []),
    '',
    '<details><summary>raw per-round figures</summary>',
    '',
    raw,
    '',
    '</details>',
    '',
    `<!-- data ${JSON.stringify(data)} -->`,
  ].join('\n');
  console.log(`\n${mainTable}\n\n${ratios}${beforeAfter ? `\n\n${beforeAfter}` : ''}\n`);
  if (o.write) {
    const id = `auth-baselines store=${o.storeArg} sign=${o.sign}`;
    writeSection(id, body);
    process.stderr.write(`updated bench/RESULTS.md section "${id}"\n`);
  }
}

await main(parseOptions(process.argv.slice(2)));
