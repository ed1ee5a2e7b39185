/**
 * The signing caches (src/signing/: SigningKeyCache, SigningDateCache, now on lru-cache) against the
 * hand-written Map caches they replaced: hits (every signed request with a known key and a repeated Date) and misses (a fresh
 * Date per request, cycling through twice the date cache's capacity). The variants alternate batch by
 * batch in one process, so machine noise falls on both alike.
 *
 *   node --import tsx bench/caches.ts [--batches 21] [--iterations 200000]
 */
import { parseArgs } from 'node:util';
import { deriveSigningKey, parseSigningDate, SigningDateCache, SigningKeyCache, type HashAlgorithm, type SigningDate } from '../src/signing/index.js';
import { fmt, median } from './lib.js';

const { values } = parseArgs({ args: process.argv.slice(2), options: { batches: { type: 'string' }, iterations: { type: 'string' } }, strict: true });
const BATCHES = Number(values.batches ?? 21);
const N = Number(values.iterations ?? 200_000);

/** The hand-written caches src/signing/ had before lru-cache: a Map with FIFO eviction. */
class MapKeyCache {
  private readonly entries = new Map<string, { secretKey: string; key: Buffer }>();
  constructor(private readonly capacity = 10_000) {}
  get(id: string, algorithm: HashAlgorithm, secretKey: string, keyDate: string, host: string): Buffer {
    const cacheKey = `${id}\u0000${algorithm}\u0000${keyDate}\u0000${host}`;
    const hit = this.entries.get(cacheKey);
    if (hit !== undefined && hit.secretKey === secretKey) return hit.key;
    const key = deriveSigningKey(algorithm, secretKey, keyDate, host);
    if (hit === undefined && this.entries.size >= this.capacity) {
      this.entries.delete(this.entries.keys().next().value as string);
    }
    this.entries.set(cacheKey, { secretKey, key });
    return key;
  }
}

class MapDateCache {
  private readonly entries = new Map<string, SigningDate | null>();
  constructor(private readonly capacity = 4096) {}
  parse(raw: string): SigningDate | undefined {
    const hit = this.entries.get(raw);
    if (hit !== undefined) return hit ?? undefined;
    const parsed = parseSigningDate(raw);
    if (this.entries.size >= this.capacity) this.entries.delete(this.entries.keys().next().value as string);
    this.entries.set(raw, parsed ?? null);
    return parsed;
  }
}

const SECRET = 'kernelgateBenchSecretKey0000000000000001';
const HOST = 'kernelgate.bench:8080';
const base = Date.now();
const DATES = Array.from({ length: 8192 }, (_, i) => `${new Date(base + i * 1000).toISOString().slice(0, -1)}123+00:00`);
// Keys that all hit (8 keypairs, one day) and keys that all miss (more distinct ids than the capacity).
const HIT_IDS = Array.from({ length: 8 }, (_, i) => `AKIABENCH${String(i).padStart(11, '0')}`);
const MISS_IDS = Array.from({ length: 20_000 }, (_, i) => `AKIAMISS${String(i).padStart(12, '0')}`);

type Case = { name: string; variants: Array<[string, () => (i: number) => unknown]> };
const cases: Case[] = [
  {
    name: 'date cache, hit',
    variants: [
      ['Map (hand-written)', () => { const c = new MapDateCache(); return () => c.parse(DATES[0]); }],
      ['lru-cache', () => { const c = new SigningDateCache(); return () => c.parse(DATES[0]); }],
    ],
  },
  {
    name: 'date cache, miss (parse + evict)',
    variants: [
      ['Map (hand-written)', () => { const c = new MapDateCache(); return (i) => c.parse(DATES[i & 8191]); }],
      ['lru-cache', () => { const c = new SigningDateCache(); return (i) => c.parse(DATES[i & 8191]); }],
    ],
  },
  {
    name: 'signing-key cache, hit',
    variants: [
      ['Map (hand-written)', () => { const c = new MapKeyCache(); return (i) => c.get(HIT_IDS[i & 7], 'sha256', SECRET, '20261202', HOST); }],
      ['lru-cache', () => { const c = new SigningKeyCache(); return (i) => c.get(HIT_IDS[i & 7], 'sha256', SECRET, '20261202', HOST); }],
    ],
  },
  {
    name: 'signing-key cache, miss (2 HMACs + evict)',
    variants: [
      ['Map (hand-written)', () => { const c = new MapKeyCache(); return (i) => c.get(MISS_IDS[i % 20_000], 'sha256', SECRET, '20261202', HOST); }],
      ['lru-cache', () => { const c = new SigningKeyCache(); return (i) => c.get(MISS_IDS[i % 20_000], 'sha256', SECRET, '20261202', HOST); }],
    ],
  },
];

let sink = 0;
for (const c of cases) {
  const iterations = c.name.includes('miss') ? Math.max(1000, Math.round(N / 20)) : N;
  const fns = c.variants.map(([, make]) => make());
  for (const fn of fns) for (let i = 0; i < iterations; i++) sink ^= fn(i) ? 1 : 0; // warm-up (and fill)
  const perCall: number[][] = fns.map(() => []);
  const offset = fns.map(() => iterations);
  for (let b = 0; b < BATCHES; b++) {
    // Alternate which variant goes first, so neither always runs on a cooler or warmer machine.
    const order = b % 2 === 0 ? fns.map((_, k) => k) : fns.map((_, k) => fns.length - 1 - k);
    for (const k of order) {
      const fn = fns[k];
      let i = offset[k];
      const t0 = process.hrtime.bigint();
      for (let j = 0; j < iterations; j++) sink ^= fn(i++) ? 1 : 0;
      perCall[k].push(Number(process.hrtime.bigint() - t0) / 1000 / iterations);
      offset[k] = i;
    }
  }
  const medians = perCall.map(median);
  const line = c.variants.map(([name], k) => `${name} ${fmt(medians[k], 3)} µs`).join(' | ');
  process.stdout.write(`${c.name.padEnd(42)} ${line} | lru/map ${fmt(medians[1] / medians[0], 2)}\n`);
}
if (sink === 42) process.stdout.write('');
