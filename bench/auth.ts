/**
 * Signed `GET /auth/test` through the real gateway vs. a bare Koa hello-world,
 * in the same run, alternating rounds (ABBA order), one in-process autocannon.
 *
 *   node --import tsx bench/auth.ts [options]
 *
 *   --rounds N          measured rounds per server (default 5)
 *   --duration S        seconds per round (default 10)
 *   --warmup S          warm-up round per server before measuring (default 5; 0 = none)
 *   --connections N     autocannon connections (default 50)
 *   --pipelining N      autocannon pipelining (default 1)
 *   --log-level L[,L]   gateway [log] level; a list starts one gateway per level (default info)
 *   --sign round|fresh  round: one signature per round (current date, cached by the gateway's
 *                       signing-date cache); fresh: every request re-signed with a unique date
 *   --store memory|redis  rate-limit store; redis starts a private redis-server on a free port
 *   --profile           run each server under `node --cpu-prof` for one round, report self time
 *   --no-build          skip `npx tsc -p tsconfig.json` before starting
 *   --no-write          do not update bench/RESULTS.md
 *
 * Gateway stdout goes to /dev/null. Both servers run as `node <script>` with the same node flags.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { signRequest } from '../src/signing/sign-request.js';
import {
  BENCH_DIR,
  ROOT,
  findPid,
  fmt,
  freePort,
  loadRound,
  machine,
  median,
  sleep,
  startNodeServer,
  summarizeProfile,
  waitQuiet,
  table,
  writeSection,
  type ChildServer,
  type RoundResult,
} from './lib.js';

export interface AuthBenchOptions {
  rounds: number;
  durationS: number;
  warmupS: number;
  connections: number;
  pipelining: number;
  logLevels: string[];
  sign: 'round' | 'fresh';
  store: 'memory' | 'redis';
  profile: boolean;
  build: boolean;
  write: boolean;
  command: string;
  /** A round during which other processes used more than this % of a core is discarded and redone. */
  maxOtherPct: number;
}

export function parseOptions(argv: string[], defaults: Partial<AuthBenchOptions> = {}, script = 'bench/auth.ts'): AuthBenchOptions {
  const { values } = parseArgs({
    args: argv,
    options: {
      rounds: { type: 'string' },
      duration: { type: 'string' },
      warmup: { type: 'string' },
      connections: { type: 'string' },
      pipelining: { type: 'string' },
      'log-level': { type: 'string' },
      sign: { type: 'string' },
      store: { type: 'string' },
      profile: { type: 'boolean' },
      'no-build': { type: 'boolean' },
      'no-write': { type: 'boolean' },
      'max-other': { type: 'string' },
    },
    strict: true,
  });
  const profile = values.profile ?? defaults.profile ?? false;
  const sign = (values.sign ?? defaults.sign ?? 'round') as AuthBenchOptions['sign'];
  if (sign !== 'round' && sign !== 'fresh') throw new Error('--sign must be round or fresh');
  const store = (values.store ?? defaults.store ?? 'memory') as AuthBenchOptions['store'];
  if (store !== 'memory' && store !== 'redis') throw new Error('--store must be memory or redis');
  return {
    rounds: Number(values.rounds ?? (profile ? 1 : defaults.rounds ?? 5)),
    durationS: Number(values.duration ?? defaults.durationS ?? 10),
    warmupS: Number(values.warmup ?? (profile ? 0 : defaults.warmupS ?? 5)),
    connections: Number(values.connections ?? defaults.connections ?? 50),
    pipelining: Number(values.pipelining ?? defaults.pipelining ?? 1),
    logLevels: (values['log-level'] ?? defaults.logLevels?.join(',') ?? 'info').split(','),
    sign,
    store,
    profile,
    build: !values['no-build'],
    write: !values['no-write'],
    maxOtherPct: Number(values['max-other'] ?? 40),
    command: `node --import tsx ${script}${argv.length ? ` ${argv.join(' ')}` : ''}`,
  };
}

const ACCESS_KEY = 'AKIABENCH00000000001';
const SECRET_KEY = 'kernelgateBenchSecretKey0000000000000001';
const PATH = '/auth/test';
const HIGH_LIMIT = 1_000_000_000; // × 900 s × 1000 stays below 2^53

interface Target {
  label: string;
  kind: 'bare' | 'gateway';
  server: ChildServer;
  start: () => Promise<ChildServer>;
  rounds: Array<RoundResult & { quietPct: number; waitedMs: number }>;
  discarded: Array<RoundResult & { quietPct: number; waitedMs: number }>;
  restarts: number;
  profileDir?: string;
}

/** Microsecond digits from a counter: a unique Date value for every request, as the Python SDK sends. */
let seq = 0;
function uniqueIsoDate(): string {
  const iso = new Date().toISOString(); // 2025-01-01T00:00:00.123Z
  seq = (seq + 1) % 1000;
  return `${iso.slice(0, -1)}${String(seq).padStart(3, '0')}+00:00`;
}

function signedHeaders(host: string, date?: string): Record<string, string> {
  const { headers } = signRequest({ method: 'GET', target: PATH, host, accessKey: ACCESS_KEY, secretKey: SECRET_KEY, date });
  return { ...headers, host };
}

async function checkOnce(t: Target): Promise<void> {
  const host = `127.0.0.1:${t.server.port}`;
  const res = await fetch(`http://${host}${PATH}`, { headers: signedHeaders(host) });
  const body = (await res.json()) as { authorized?: string };
  if (res.status !== 200 || body.authorized !== 'yes') {
    throw new Error(`${t.label}: signed GET ${PATH} answered ${res.status} ${JSON.stringify(body)}`);
  }
}

export async function runAuthBench(o: AuthBenchOptions): Promise<void> {
  if (o.build) {
    process.stderr.write('building: npx tsc -p tsconfig.json\n');
    execFileSync('npx', ['tsc', '-p', 'tsconfig.json'], { cwd: ROOT, stdio: ['ignore', 'ignore', 'inherit'] });
  }
  const started = new Date();
  const tmp = mkdtempSync(join(tmpdir(), 'kg-bench-'));
  const keypairsDir = join(tmp, 'keypairs');
  mkdirSync(keypairsDir);
  writeFileSync(
    join(keypairsDir, `${ACCESS_KEY}.toml`),
    [
      `access_key = "${ACCESS_KEY}"`,
      `secret_key = "${SECRET_KEY}"`,
      'role = "user"',
      'domain = "default"',
      'user = "bench@example.com"',
      `rate_limit = ${HIGH_LIMIT}`,
      'is_active = true',
      '',
    ].join('\n'),
  );

  let redis: { url: string; port: number; stop(): Promise<void> } | undefined;
  let redisPid: number | undefined;
  let redisAdmin: { info(section: string): Promise<string>; dbsize(): Promise<number>; disconnect(): void } | undefined;
  if (o.store === 'redis') {
    const { startRedisServer } = await import('../test/helpers/redis-server.js');
    redis = await startRedisServer();
    redisPid = findPid('redis-server', `:${redis.port}`) ?? findPid('redis-server', String(redis.port));
    const { Redis } = await import('ioredis');
    redisAdmin = new Redis(redis.url);
  }

  const targets: Target[] = [];
  // Profiles are kept (outside the repository) for a closer look: e.g. load them in Chrome DevTools.
  const profileRoot = join(tmpdir(), `kg-bench-profiles-${started.toISOString().replace(/[:.]/g, '-')}`);
  const nodeFlagsFor = (label: string): { flags: string[]; dir?: string } => {
    if (!o.profile) return { flags: [] };
    const dir = join(profileRoot, `prof-${label}`);
    mkdirSync(dir, { recursive: true });
    return { flags: ['--cpu-prof', `--cpu-prof-dir=${dir}`], dir };
  };
  try {
    // Bare Koa
    {
      const port = await freePort();
      const { flags, dir } = nodeFlagsFor('bare');
      const start = () =>
        startNodeServer({
          name: 'bare koa',
          script: join(BENCH_DIR, 'bare-koa.mjs'),
          args: ['--port', String(port)],
          port,
          nodeFlags: flags,
        });
      targets.push({ label: 'bare koa', kind: 'bare', server: await start(), start, rounds: [], discarded: [], restarts: 0, profileDir: dir });
    }
    // One gateway per log level
    for (const level of o.logLevels) {
      const port = await freePort();
      const config = join(tmp, `config-${level}.toml`);
      const lines = [
        '[keypairs]',
        `dir = ${JSON.stringify(keypairsDir)}`,
        '',
        '[ratelimit]',
        `store = "${o.store}"`,
        ...(redis ? [`redis_url = "${redis.url}"`] : []),
        `default_limit = ${HIGH_LIMIT}`,
        '',
        '[log]',
        `level = "${level}"`,
        '',
      ];
      writeFileSync(config, lines.join('\n'));
      const label = `gateway (log ${level})`;
      const { flags, dir } = nodeFlagsFor(`gateway-${level}`);
      const start = () =>
        startNodeServer({
          name: label,
          script: join(ROOT, 'bin/kernelgate.js'),
          args: ['serve', '--config', config, '--port', String(port)],
          port,
          nodeFlags: flags,
        });
      targets.push({ label, kind: 'gateway', server: await start(), start, rounds: [], discarded: [], restarts: 0, profileDir: dir });
    }
    for (const t of targets) await checkOnce(t);

    // Which rate-limit store is the gateway really using?
    const storeSeen: string[] = [];
    for (const t of targets.filter((x) => x.kind === 'gateway')) {
      const res = await fetch(`http://127.0.0.1:${t.server.port}/health`);
      const h = (await res.json()) as { ratelimit?: { store?: string; status?: string; reason?: string } };
      storeSeen.push(`${t.label}: GET /health → ratelimit ${JSON.stringify(h.ratelimit)}`);
    }
    for (const line of storeSeen) process.stderr.write(`${line}\n`);

    const redisBefore = redisAdmin ? await redisStats(redisAdmin) : undefined;

    const load = (t: Target, durationS: number) => {
      const host = `127.0.0.1:${t.server.port}`;
      const common = { port: t.server.port, path: PATH, connections: o.connections, pipelining: o.pipelining, durationS };
      const extra = t.kind === 'gateway' ? redisPid : undefined;
      return o.sign === 'fresh'
        ? loadRound({ ...common, perRequestHeaders: () => signedHeaders(host, uniqueIsoDate()) }, t.server.pid, extra)
        : loadRound({ ...common, headers: signedHeaders(host) }, t.server.pid, extra);
    };

    // Other people's processes share this machine and have been seen to stop stray
    // gateways: a server that died is restarted (and warmed up again) and its round redone.
    const measure = async (t: Target, durationS: number) => {
      for (let attempt = 1; ; attempt++) {
        if (!t.server.alive()) {
          process.stderr.write(`restarting ${t.label}\n`);
          t.server = await t.start();
          t.restarts++;
          await checkOnce(t);
          if (o.warmupS > 0) await load(t, o.warmupS).catch(() => undefined);
        }
        const quiet = await waitQuiet(15, 120_000);
        let r: RoundResult;
        try {
          r = await load(t, durationS);
          await sleep(50);
          if (!t.server.alive()) throw new Error(`${t.label} died during the round`);
        } catch (error) {
          process.stderr.write(`round failed (${(error as Error).message}); attempt ${attempt}\n`);
          if (attempt >= 5) throw error;
          continue;
        }
        const full = { ...r, quietPct: quiet.busyPct, waitedMs: quiet.waitedMs };
        if (r.otherCpuPct > o.maxOtherPct && attempt < 5) {
          process.stderr.write(
            `  discarded ${t.label} at ${fmt(r.rps)} req/s: other processes used ${fmt(r.otherCpuPct)} % of a core (> ${o.maxOtherPct}); redoing\n`,
          );
          t.discarded.push(full);
          continue;
        }
        return full;
      }
    };
    if (o.warmupS > 0) {
      for (const t of targets) {
        process.stderr.write(`warm-up ${t.label} ${o.warmupS} s\n`);
        await load(t, o.warmupS);
      }
    }
    const order: string[] = [];
    for (let i = 0; i < o.rounds; i++) {
      const seq = i % 2 === 0 ? targets : [...targets].reverse();
      order.push(seq.map((t) => t.label).join(' → '));
      for (const t of seq) {
        const r = await measure(t, o.durationS);
        t.rounds.push(r);
        process.stderr.write(
          `round ${i + 1}/${o.rounds} ${t.label.padEnd(20)} ${fmt(r.rps).padStart(7)} req/s  p50 ${r.p50} ms  p99 ${r.p99} ms  ` +
            `non2xx ${r.non2xx} err ${r.errors}  cpu server ${fmt(r.serverCpuPct)}% loadgen ${fmt(r.loadgenCpuPct)}%` +
            (r.extraCpuPct !== undefined ? ` redis ${fmt(r.extraCpuPct)}%` : '') +
            ` other ${fmt(r.otherCpuPct)}% (before round ${fmt(r.quietPct)}%)` +
            '\n',
        );
      }
    }
    const redisAfter = redisAdmin ? await redisStats(redisAdmin) : undefined;

    for (const t of targets) await t.server.stop();

    // ------------------------------------------------------------ report
    const bare = targets[0];
    const bareRps = median(bare.rounds.map((r) => r.rps));
    const summary = table(
      ['server', 'median req/s', 'ratio vs bare', 'median p50 ms', 'median p99 ms', 'median server CPU %', 'median loadgen CPU %', 'non-2xx', 'errors'],
      targets.map((t) => {
        const rps = median(t.rounds.map((r) => r.rps));
        return [
          t.label,
          fmt(rps),
          t === bare ? '1.00' : fmt(rps / bareRps, 3),
          fmt(median(t.rounds.map((r) => r.p50)), 1),
          fmt(median(t.rounds.map((r) => r.p99)), 1),
          fmt(median(t.rounds.map((r) => r.serverCpuPct))),
          fmt(median(t.rounds.map((r) => r.loadgenCpuPct))),
          t.rounds.reduce((s, r) => s + r.non2xx, 0),
          t.rounds.reduce((s, r) => s + r.errors + r.timeouts, 0),
        ];
      }),
    );
    const raw = table(
      ['round', 'server', 'req/s', 'p50 ms', 'p90 ms', 'p99 ms', 'requests', 'non-2xx', 'errors', 'server CPU %', 'loadgen CPU %', ...(redisPid ? ['redis CPU %'] : []), 'other procs CPU %', 'machine busy before %'],
      targets.flatMap((t) =>
        [...t.rounds.map((r, i) => ({ r, n: String(i + 1) })), ...t.discarded.map((r) => ({ r, n: 'discarded' }))].map(({ r, n }) => [
          n,
          t.label,
          fmt(r.rps, 1),
          r.p50,
          r.p90,
          r.p99,
          r.total,
          r.non2xx,
          r.errors + r.timeouts,
          fmt(r.serverCpuPct),
          fmt(r.loadgenCpuPct),
          ...(redisPid ? [r.extraCpuPct !== undefined ? fmt(r.extraCpuPct) : '–'] : []),
          fmt(r.otherCpuPct),
          fmt(r.quietPct),
        ]),
      ),
    );
    const goal = o.store === 'redis' ? 0.7 : 0.8;
    const ratios = targets
      .filter((t) => t.kind === 'gateway')
      .map((t) => `${t.label}: ${fmt(median(t.rounds.map((r) => r.rps)) / bareRps, 3)} (goal ≥ ${goal.toFixed(2)})`);
    console.log(`\n${summary}\n\n${raw}\n`);
    console.log(ratios.join('\n'));

    const id = o.profile ? `auth profile store=${o.store} sign=${o.sign}` : `auth store=${o.store} log=${o.logLevels.join(',')} sign=${o.sign}`;
    const signNote =
      o.sign === 'round'
        ? 'One signature per round (signed with the current date just before the round; valid ±15 min). Every request of a round carries the same `Date`, so the gateway’s signing-date cache (luxon parse) and signing-key cache always hit: this is the cheapest case for the verifier.'
        : 'Every request re-signed in autocannon `setupRequest` with `signRequest` and a unique `Date` (millisecond clock + a counter in the microsecond digits, like the Python SDK’s isoformat()), so the gateway parses a new date for every request (date-cache miss; the signing-key cache still hits, same day and host). The bare Koa rounds get the same per-request signing on the client side, so the load generator does the same work for both.';
    let body = [
      `## ${o.profile ? 'Profile: ' : ''}GET /auth/test — gateway (${o.store} rate-limit store, log ${o.logLevels.join(' / ')}, ${o.sign === 'round' ? 'one signature per round' : 'fresh signature per request'}) vs bare Koa`,
      '',
      `- command: \`${o.command}\``,
      `- date: ${started.toISOString()}`,
      `- machine: ${machine()}`,
      `- load: autocannon in the bench process (no workers), ${o.connections} connections, pipelining ${o.pipelining}, ${o.rounds} round(s) × ${o.durationS} s per server` +
        `${o.warmupS > 0 ? ` after a ${o.warmupS} s warm-up round each` : ', no warm-up'}; rounds alternate in ABBA order (${order.slice(0, 2).join(' | ')} | …)`,
      `- servers: \`node bench/bare-koa.mjs\` and \`node bin/kernelgate.js serve --config <tmp> --port N\` (same node flags${o.profile ? ': `--cpu-prof`' : ': none'}), stdout → /dev/null, NODE_ENV=production; ` +
        `gateway config = defaults except \`[log] level\`, \`[keypairs] dir\`, \`[ratelimit] default_limit = ${HIGH_LIMIT}\`` +
        `${o.store === 'redis' ? `, \`store = "redis"\`, \`redis_url\` = private redis-server (--save "" --appendonly no) on a free port` : ''}; the keypair file has \`rate_limit = ${HIGH_LIMIT}\``,
      `- signing: ${signNote}`,
      `- CPU %: utime+stime from /proc for the server (all threads) and process.cpuUsage() for the load generator, over the round's wall time (100 % = one core; the machine has ${execFileSync('nproc').toString().trim()})`,
      `- other load: this machine is shared with other engineers' test runs. Before every round the script waits (≤ 120 s) until the machine is < 15 % busy over 1 s ("machine busy before"); "other procs CPU %" is machine-wide busy time during the round minus server, load generator${redisPid ? ' and redis-server' : ''}. A round during which other processes used more than ${o.maxOtherPct} % of one core is discarded and redone (up to 4 times; discarded rounds are listed in the raw table, not used in medians): ${targets.map((t) => `${t.label} ${t.discarded.length}`).join(', ')}. Server restarts (a server that died is restarted, warmed up and its round redone): ${targets.map((t) => `${t.label} ${t.restarts}`).join(', ')}`,
      `- rate-limit store actually in use: ${storeSeen.join('; ')}`,
      ...(redisBefore && redisAfter
        ? [
            `- redis-server during the measured rounds: total_commands_processed ${redisBefore.commands} → ${redisAfter.commands} (+${redisAfter.commands - redisBefore.commands}), keys ${redisAfter.keys}`,
          ]
        : []),
      '',
      summary,
      '',
      `Ratio gateway / bare: ${ratios.join('; ')}`,
      '',
      '<details><summary>raw per-round figures</summary>',
      '',
      raw,
      '',
      '</details>',
      '',
      `<!-- data ${JSON.stringify({
        script: 'auth',
        date: started.toISOString(),
        command: o.command,
        servers: targets.map((t) => ({ label: t.label, kind: t.kind, rps: Math.round(median(t.rounds.map((r) => r.rps))), ratio: Number((median(t.rounds.map((r) => r.rps)) / bareRps).toFixed(3)) })),
      })} -->`,
    ].join('\n');

    if (o.profile) {
      const profileParts: string[] = [];
      for (const t of targets) {
        if (!t.profileDir) continue;
        const files = readdirSync(t.profileDir).filter((f) => f.endsWith('.cpuprofile')).sort().reverse();
        if (files.length === 0) {
          profileParts.push(`(no profile written for ${t.label})`);
          continue;
        }
        const s = summarizeProfile(join(t.profileDir, files[0]), t.kind === 'gateway' ? 30 : 15);
        const busy = s.totalMs - s.idleMs;
        const top = table(
          ['#', 'function', 'where', 'self ms', '% of busy'],
          s.top.map((e, i) => [i + 1, `\`${e.name}\``, e.where ? `\`${e.where}\`` : '', fmt(e.selfMs), fmt(e.pct, 1)]),
        );
        const inclusive = table(
          ['#', 'function', 'where', 'total ms (self + callees)', '% of busy'],
          s.inclusive.map((e, i) => [i + 1, `\`${e.name}\``, e.where ? `\`${e.where}\`` : '', fmt(e.totalMs), fmt(e.pct, 1)]),
        );
        const areas = table(
          ['package / file', 'self ms', '% of busy'],
          s.byArea.slice(0, 20).map((a) => [`\`${a.area}\``, fmt(a.selfMs), fmt(a.pct, 1)]),
        );
        const text = `### ${t.label}: profile (${fmt(s.totalMs)} ms sampled, ${fmt(s.idleMs)} ms idle, ${fmt(busy)} ms busy on the main thread)\n\nTop self time by function:\n\n${top}\n\nSelf time by package / file:\n\n${areas}${t.kind === 'gateway' ? `\n\nInclusive time (self + callees; top ${s.inclusive.length}):\n\n${inclusive}` : ''}`;
        console.log(`\n${text}`);
        profileParts.push(text);
      }
      body += `\n\nProfiles kept in \`${profileRoot}\` (outside the repository). The profiles cover the whole process life (start-up, ${o.warmupS > 0 ? 'warm-up, ' : ''}the measured round, shutdown); \`--cpu-prof\` itself slows both servers, so the req/s above are not comparable with unprofiled runs.\n\n${profileParts.join('\n\n')}`;
    }
    if (o.write) {
      writeSection(id, body);
      process.stderr.write(`updated ${join('bench', 'RESULTS.md')} section "${id}"\n`);
    }
  } finally {
    for (const t of targets) await t.server.stop().catch(() => {});
    redisAdmin?.disconnect();
    await redis?.stop();
    rmSync(tmp, { recursive: true, force: true });
  }
}

async function redisStats(admin: { info(section: string): Promise<string>; dbsize(): Promise<number> }) {
  const info = await admin.info('stats');
  const commands = Number(/total_commands_processed:(\d+)/.exec(info)?.[1] ?? NaN);
  return { commands, keys: await admin.dbsize() };
}

if (import.meta.url === `file://${process.argv[1]}` || process.argv[1]?.endsWith('bench/auth.ts')) {
  await runAuthBench(parseOptions(process.argv.slice(2)));
}
