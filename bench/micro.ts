/**
 * The microsecond figures bench/RESULTS.md quotes: one HMAC-SHA256 over a
 * typical string to sign, the whole verifyRequest (date-cache hit and miss),
 * one access-log line with pino to a real file, the signing-date parser, and the
 * API-key scheme's verification (checkApiKey) next to verifyRequest.
 *
 *   node --import tsx bench/micro.ts [--batches 15] [--iterations 20000] [--no-write]
 *
 * Each case: a warm-up batch, then --batches timed batches of --iterations calls
 * (process.hrtime.bigint around the whole batch); reported: the median batch's
 * time per call, with the fastest and slowest batch beside it. Everything runs in
 * this process, one case after the other, on the main thread.
 */
import { createHash, createHmac } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { destination, pino } from 'pino';
import { checkApiKey } from '../src/auth/authenticators/apikey.js';
import { verifyRequest, type RequestToVerify, type VerifyPolicy } from '../src/auth/verify.js';
import { API_VERSIONS } from '../src/config/schema.js';
import { deriveSigningKey, parseSigningDate, signRequest, SigningDateCache, SigningKeyCache, type HashAlgorithm } from '../src/signing/index.js';
import type { Keypair } from '../src/keypairs/keypair.js';
import { fmt, machine, median, table, writeSection } from './lib.js';

const argv = process.argv.slice(2);
const { values } = parseArgs({
  args: argv,
  options: { batches: { type: 'string' }, iterations: { type: 'string' }, 'no-write': { type: 'boolean' } },
  strict: true,
});
const BATCHES = Number(values.batches ?? 15);
const ITERATIONS = Number(values.iterations ?? 20_000);
const command = `node --import tsx bench/micro.ts${argv.length ? ` ${argv.join(' ')}` : ''}`;

interface Case {
  name: string;
  what: string;
  medianUs: number;
  minUs: number;
  maxUs: number;
}
const results: Case[] = [];
let sink = 0; // keeps results alive so nothing is optimized away

/** Times `fn(i)` over batches; `between` runs outside the timing after each batch (e.g. flushing). */
async function bench(name: string, what: string, fn: (i: number) => unknown, opts: { iterations?: number; between?: () => void | Promise<void> } = {}): Promise<Case> {
  const n = opts.iterations ?? ITERATIONS;
  for (let i = 0; i < n; i++) sink ^= fn(i) ? 1 : 0; // warm-up: let V8 optimize
  await opts.between?.();
  const perCall: number[] = [];
  let k = n;
  for (let b = 0; b < BATCHES; b++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < n; i++) sink ^= fn(k++) ? 1 : 0;
    const t1 = process.hrtime.bigint();
    perCall.push(Number(t1 - t0) / 1000 / n);
    await opts.between?.();
  }
  const c = { name, what, medianUs: median(perCall), minUs: Math.min(...perCall), maxUs: Math.max(...perCall) };
  results.push(c);
  process.stderr.write(`${name.padEnd(48)} ${fmt(c.medianUs, 3).padStart(8)} µs  (batches ${fmt(c.minUs, 3)}–${fmt(c.maxUs, 3)})\n`);
  return c;
}

// ------------------------------------------------------------ a typical signed request
const ACCESS_KEY = 'AKIABENCH00000000001';
const SECRET_KEY = 'kernelgateBenchSecretKey0000000000000001';
const HOST = 'kernelgate.bench:8080';
const TARGET = '/auth/test';
const ALG: HashAlgorithm = 'sha256';
const keypair: Keypair = { accessKey: ACCESS_KEY, secretKey: SECRET_KEY, role: 'user', domain: 'default', user: 'bench@example.com', isActive: true };
const policy: VerifyPolicy = { algorithms: new Set<HashAlgorithm>([ALG]), skewMs: 900_000, bodyHashMode: 'strict', apiVersions: new Set(API_VERSIONS) };

/** Python-SDK style dates (isoformat() with microseconds), all distinct, ending now. */
function isoDate(i: number, base: number): string {
  return `${new Date(base + i).toISOString().slice(0, -1)}${String(i % 1000).padStart(3, '0')}+00:00`;
}
function toVerify(headers: Record<string, string>): RequestToVerify {
  const lower = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]));
  return { method: 'GET', target: TARGET, header: (name) => lower[name], host: HOST, body: Buffer.alloc(0) };
}

const one = signRequest({ method: 'GET', target: TARGET, host: HOST, accessKey: ACCESS_KEY, secretKey: SECRET_KEY });
const signingKey = deriveSigningKey(ALG, SECRET_KEY, parseSigningDate(one.headers.Date ?? one.headers['X-BackendAI-Date'])!.keyDate, HOST);
const stringToSign = one.stringToSign;

await bench('createHmac SHA-256 (hex digest)', `\`createHmac('sha256', key).update(s).digest('hex')\` over the string to sign of a signed GET ${TARGET} (${stringToSign.length} bytes)`, () =>
  createHmac('sha256', signingKey).update(stringToSign, 'utf8').digest('hex'),
);

// verifyRequest: one date for every call (the caches always hit) ...
const sameReq = toVerify(one.headers);
const keys = new SigningKeyCache();
const dates = new SigningDateCache();
await bench('verifyRequest, same Date every call', 'the whole `verifyRequest` (src/auth/verify.ts) on a valid signed GET, same Date each call: date and signing-key caches hit', () => {
  const v = verifyRequest(sameReq, policy, { lookup: (ak) => (ak === ACCESS_KEY ? keypair : undefined), keys, dates, now: Date.now() });
  return v.keypair;
});

// ... and a fresh Date on every call: 8192 pre-signed requests cycled, twice the date cache's 4096 entries.
const POOL = 8192;
const base = Date.now() - POOL;
const pool = Array.from({ length: POOL }, (_, i) =>
  toVerify(signRequest({ method: 'GET', target: TARGET, host: HOST, accessKey: ACCESS_KEY, secretKey: SECRET_KEY, date: isoDate(i, base) }).headers),
);
const freshDates = new SigningDateCache();
await bench('verifyRequest, fresh Date every call', `the whole \`verifyRequest\` with a different Date on every call (${POOL} pre-signed requests cycled through a 4096-entry date cache: every call parses its date; the signing-key cache hits)`, (i) => {
  const v = verifyRequest(pool[i % POOL], policy, { lookup: (ak) => (ak === ACCESS_KEY ? keypair : undefined), keys, dates: freshDates, now: Date.now() });
  return v.keypair;
});

// ------------------------------------------------------------ static API key (issue 10)
// The API-key scheme's whole verification: format check, SHA-256 of the key, lookup by hash in the
// store's in-memory index (a Map, as KeypairStore.byApiKeyHash), constant-time comparison of the hashes.
const apiKey = `kg_${'Bench0123456789'.repeat(3).slice(0, 32)}`;
const apiKeyIndex = new Map([[createHash('sha256').update(apiKey).digest('hex'), { keypair, key: { id: 'bench1', sha256: createHash('sha256').update(apiKey).digest('hex'), scope: 'full' as const, createdAt: 0 } }]]);
await bench('checkApiKey (x-api-key), valid key', 'the API-key scheme\'s verification (`checkApiKey`, src/auth/authenticators/apikey.ts): format check, SHA-256, index lookup by hash, timingSafeEqual; next to verifyRequest above', () =>
  checkApiKey(apiKey, false, (h) => apiKeyIndex.get(h), Date.now()).keypair,
);

// ------------------------------------------------------------ date parser
const isoSdk = isoDate(123, Date.now());
await bench('parseSigningDate, ISO 8601 (Python SDK)', `\`parseSigningDate('${isoSdk}')\`: the fast path`, () => parseSigningDate(isoSdk));
const rfc = new Date().toUTCString();
await bench('parseSigningDate, RFC 1123', `\`parseSigningDate('${rfc}')\`: the fast path`, () => parseSigningDate(rfc));
const weekDate = '2026-W49-3T07:30:00.123+09:00';
await bench('parseSigningDate, luxon fallback', `\`parseSigningDate('${weekDate}')\`: an ISO week date, parsed by luxon`, () => parseSigningDate(weekDate), {
  iterations: Math.max(1000, Math.round(ITERATIONS / 10)),
});
const cache = new SigningDateCache();
await bench('SigningDateCache.parse, hit', 'the same ISO date through the gateway’s date cache (a Map lookup)', () => cache.parse(isoSdk));

// ------------------------------------------------------------ access-log line
// Same logger options as createAccessLogger (src/observability/logger.ts): no redaction, base
// {service}, asynchronous sonic-boom; here to a real file instead of fd 1.
const dir = mkdtempSync(join(tmpdir(), 'kg-bench-micro-'));
try {
  for (const sync of [false, true]) {
    const file = join(dir, `access-${sync ? 'sync' : 'async'}.log`);
    const dest = destination({ dest: file, sync, minLength: 0 });
    if (!sync) await once(dest, 'ready');
    const flush = () => (sync ? dest.flushSync() : new Promise<void>((r) => dest.flush(() => r())));
    const log = pino({ level: 'info', base: { service: 'kernelgate' } }, dest);
    let reqN = 0;
    const line = () =>
      log.info(
        {
          reqId: `1a2b-m3x9k2-${(reqN++).toString(36)}`,
          method: 'GET',
          route: '/auth/test',
          status: 200,
          ms: 0.4,
          client: '127.0.0.1',
          accessKey: ACCESS_KEY,
          owner: undefined,
        },
        'request',
      );
    const c = await bench(
      `access-log line, pino ${sync ? 'sync' : 'async (as the gateway)'}`,
      `one \`log.info({reqId, method, route, status, ms, client, accessKey, owner}, 'request')\` with pino to a file, ${sync ? 'sonic-boom sync: one write(2) per line' : 'sonic-boom async as createAccessLogger uses it (writes leave on the thread pool; flushed between batches, outside the timing)'}`,
      line,
      { iterations: Math.max(1000, Math.round(ITERATIONS / 4)), between: flush },
    );
    await flush();
    dest.end();
    await once(dest, 'close');
    const bytes = statSync(file).size;
    c.what += `; ${fmt(bytes / reqN)} bytes per line`;
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}

// ------------------------------------------------------------ report
const rows = results.map((c) => [c.name, `**${fmt(c.medianUs, 3)}**`, `${fmt(c.minUs, 3)} – ${fmt(c.maxUs, 3)}`, c.what]);
const body = [
  '## Micro-benchmarks: HMAC, verifyRequest, date parser, access-log line',
  '',
  `- command: \`${command}\``,
  `- date: ${new Date().toISOString()}`,
  `- machine: ${machine()}`,
  `- method: per case one warm-up batch, then ${BATCHES} batches of the stated calls (${ITERATIONS} unless the case needs fewer: luxon ${Math.max(1000, Math.round(ITERATIONS / 10))}, log lines ${Math.max(1000, Math.round(ITERATIONS / 4))}), timed with process.hrtime.bigint around each batch; µs per call of the median batch, fastest – slowest batch beside it; one process, main thread`,
  '',
  table(['case', 'µs per call (median batch)', 'batch range µs', 'what exactly'], rows),
  '',
  `<!-- data ${JSON.stringify({ script: 'micro', date: new Date().toISOString(), command, cases: results.map((c) => ({ name: c.name, us: Number(c.medianUs.toFixed(3)) })) })} -->`,
].join('\n');
console.log(`\n${body}\n`);
if (sink === 42) console.log(''); // use the sink
if (!values['no-write']) {
  writeSection('micro', body);
  process.stderr.write('updated bench/RESULTS.md section "micro"\n');
}
