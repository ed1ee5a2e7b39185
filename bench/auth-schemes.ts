/**
 * Cost per request of each credential scheme on ONE gateway in ONE run (issue 10): signed
 * `GET /auth/test` with a Backend.AI HMAC signature, with a static API key (x-api-key), and with an
 * OIDC bearer token (RS256, the algorithm Cognito uses, and ES256) verified against a JWKS served by a
 * provider this script runs (test/helpers/jwks-provider.ts). The same keypair answers every scheme.
 * Rounds alternate between schemes (ABC CBA ...), each one in-process autocannon run; reported per
 * scheme: median req/s, p50/p99 latency (µs resolution), the gateway's CPU per request, and ratios to
 * HMAC.
 *
 *   node --import tsx bench/auth-schemes.ts [options]
 *
 *   --rounds N          measured rounds per scheme (default 3)
 *   --duration S        seconds per round (default 5)
 *   --warmup S          warm-up per scheme before measuring (default 2)
 *   --connections N     autocannon connections (default 50)
 *   --pool N            HMAC: pre-signed header sets used in turn, each with its own Date (default 20000,
 *                       more than the gateway's date cache, so each request verifies a new signature)
 *   --no-build          skip `npx tsc -p tsconfig.json`
 *   --no-write          do not update bench/RESULTS.md
 */
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { formatKeypair } from '../src/keypairs/keypair.js';
import { signRequest } from '../src/signing/sign-request.js';
import { accessToken, makeSigningKey, startJwksProvider } from '../test/helpers/jwks-provider.js';
import { fmt, freePort, LatencyHistogram, loadRound, machine, median, ROOT, startNodeServer, table, writeSection, type RoundResult } from './lib.js';

const ACCESS_KEY = 'AKIAKGATEBENCHSCHEME';
const SECRET_KEY = 'benchSchemesSecretKey000000000000000000S';
const CLIENT = 'bench-client';
const BASE62 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

type Scheme = 'hmac' | 'apikey' | 'bearer-rs256' | 'bearer-es256';
const SCHEMES: Scheme[] = ['hmac', 'apikey', 'bearer-rs256', 'bearer-es256'];

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      rounds: { type: 'string' },
      duration: { type: 'string' },
      warmup: { type: 'string' },
      connections: { type: 'string' },
      pool: { type: 'string' },
      'no-build': { type: 'boolean' },
      'no-write': { type: 'boolean' },
    },
    strict: true,
  });
  const rounds = Number(values.rounds ?? 3);
  const durationS = Number(values.duration ?? 5);
  const warmupS = Number(values.warmup ?? 2);
  const connections = Number(values.connections ?? 50);
  const poolSize = Number(values.pool ?? 20_000);
  const command = `node --import tsx bench/auth-schemes.ts ${process.argv.slice(2).join(' ')}`.trim();
  if (!values['no-build']) execFileSync('npx', ['tsc', '-p', 'tsconfig.json'], { cwd: ROOT, stdio: ['ignore', 'ignore', 'inherit'] });

  const provider = await startJwksProvider();
  const rsa = await makeSigningKey('bench-rsa', 'RS256');
  const ec = await makeSigningKey('bench-ec', 'ES256');
  provider.keys = [rsa.publicJwk, ec.publicJwk];
  const apiKey = `kg_${[...randomBytes(32)].map((b) => BASE62[b % 62]).join('')}`;

  const tmp = mkdtempSync(join(tmpdir(), 'kg-bench-schemes-'));
  const keypairs = join(tmp, 'keypairs');
  mkdirSync(keypairs);
  writeFileSync(
    join(keypairs, `${ACCESS_KEY}.toml`),
    formatKeypair({
      accessKey: ACCESS_KEY, secretKey: SECRET_KEY, role: 'user', domain: 'default', user: 'bench@example.com', rateLimit: 1_000_000_000, isActive: true,
      oidcSubjects: ['bench-sub'], apiKeys: [{ id: 'bench1', sha256: createHash('sha256').update(apiKey).digest('hex'), scope: 'full', createdAt: Date.now() }],
    }),
    { mode: 0o600 },
  );
  const port = await freePort();
  writeFileSync(
    join(tmp, 'config.toml'),
    `[log]\nlevel = "warn"\n[auth]\nschemes = ["backendai", "apikey", "oidc"]\n[[auth.oidc]]\nissuer = ${JSON.stringify(provider.url)}\nclient_ids = [${JSON.stringify(CLIENT)}]\ntoken_use = "access"\n[keypairs]\ndir = ${JSON.stringify(keypairs)}\n`,
  );
  const gw = await startNodeServer({ name: 'gateway', script: join(ROOT, 'bin/kernelgate.js'), args: ['serve', '--config', join(tmp, 'config.toml'), '--port', String(port)], port, readyPath: '/health' });

  const host = `127.0.0.1:${port}`;
  const target = '/auth/test';
  const pool = Array.from({ length: poolSize }, (_, i) =>
    signRequest({ method: 'GET', target, host, accessKey: ACCESS_KEY, secretKey: SECRET_KEY, date: new Date(Date.now() - i * 10).toISOString() }).headers,
  );
  let next = 0;
  const rs256 = await accessToken(rsa, provider.url, CLIENT, 'bench-sub');
  const es256 = await accessToken(ec, provider.url, CLIENT, 'bench-sub');
  const headersOf: Record<Scheme, () => Record<string, string>> = {
    hmac: () => ({ host, ...pool[next++ % pool.length]! }),
    apikey: () => ({ host, 'x-api-key': apiKey }),
    'bearer-rs256': () => ({ host, authorization: `Bearer ${rs256}` }),
    'bearer-es256': () => ({ host, authorization: `Bearer ${es256}` }),
  };
  // Every scheme answers 200 before anything is measured (and the JWKS is fetched once, here).
  for (const s of SCHEMES) {
    const res = await fetch(`http://${host}${target}`, { headers: headersOf[s]() });
    if (res.status !== 200) throw new Error(`${s}: HTTP ${res.status} ${await res.text()}`);
  }

  const results = new Map<Scheme, Array<RoundResult & { cpuUsPerReq: number }>>(SCHEMES.map((s) => [s, []]));
  const latency = new Map<Scheme, LatencyHistogram>(SCHEMES.map((s) => [s, new LatencyHistogram()]));
  const round = (s: Scheme, seconds: number, h?: LatencyHistogram) =>
    loadRound({ port, path: target, connections, pipelining: 1, durationS: seconds, perRequestHeaders: headersOf[s], latency: h }, gw.pid);
  try {
    if (warmupS > 0) for (const s of SCHEMES) await round(s, warmupS);
    for (let r = 0; r < rounds; r++) {
      const order = r % 2 === 0 ? SCHEMES : [...SCHEMES].reverse();
      for (const s of order) {
        const res = await round(s, durationS, latency.get(s));
        if (res.non2xx > 0 || res.errors > 0) throw new Error(`${s}: ${res.non2xx} non-2xx, ${res.errors} errors`);
        // Gateway CPU (all threads) per request, in µs.
        const cpuUsPerReq = ((res.serverCpuPct / 100) * 1e6) / res.rps;
        results.get(s)!.push({ ...res, cpuUsPerReq });
        process.stderr.write(`${s} round ${r + 1}: ${fmt(res.rps)} req/s, gateway ${fmt(res.serverCpuPct)} % CPU, ${fmt(cpuUsPerReq)} µs CPU/req, others ${fmt(res.otherCpuPct)} %\n`);
      }
    }
  } finally {
    await gw.stop();
    await provider.close();
    rmSync(tmp, { recursive: true, force: true });
  }

  const row = (s: Scheme) => {
    const rs = results.get(s)!;
    const h = latency.get(s)!;
    return { rps: median(rs.map((x) => x.rps)), cpu: median(rs.map((x) => x.cpuUsPerReq)), p50: h.percentile(50), p99: h.percentile(99), other: median(rs.map((x) => x.otherCpuPct)) };
  };
  const hmac = row('hmac');
  const label: Record<Scheme, string> = {
    hmac: 'HMAC-SHA256 signature (fresh Date per request)',
    apikey: 'API key (x-api-key)',
    'bearer-rs256': 'bearer token, RS256 (Cognito)',
    'bearer-es256': 'bearer token, ES256',
  };
  const body = [
    `## Credential schemes: cost per request of HMAC, API key and bearer token on one gateway (issue 10)`,
    '',
    `Command: \`${command}\`, ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC. Signed \`GET /auth/test\`, one gateway (memory store, log warn) with`,
    '`[auth] schemes = ["backendai", "apikey", "oidc"]`, one keypair for every scheme, a JWKS provider run by the script on',
    `127.0.0.1 (fetched once before measuring; tokens are verified on every request, there is no token cache). ${rounds} rounds of ${durationS} s per scheme,`,
    `alternating order, ${connections} connections, autocannon in-process. req/s and CPU/request are medians of rounds; latency percentiles over all rounds.`,
    '',
    table(
      ['scheme', 'req/s', 'ratio to HMAC', 'p50 ms', 'p99 ms', 'gateway CPU µs/req', 'CPU ratio to HMAC', 'other load (% of a core)'],
      SCHEMES.map((s) => {
        const x = row(s);
        return [label[s], fmt(x.rps), fmt(x.rps / hmac.rps, 2), fmt(x.p50, 3), fmt(x.p99, 3), fmt(x.cpu), fmt(x.cpu / hmac.cpu, 2), fmt(x.other)];
      }),
    ),
    '',
    `Machine: ${machine()}.`,
    '',
    'The machine was shared with other jobs while this ran (see "other load"): absolute figures are noisy; the ratios, taken in',
    'the same run with alternating rounds, are the result.',
  ].join('\n');
  process.stdout.write(`${body}\n`);
  if (!values['no-write']) writeSection('auth-schemes', body);
}

main().catch((error) => {
  process.stderr.write(`${(error as Error).stack}\n`);
  process.exit(1);
});
