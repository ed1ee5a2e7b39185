/**
 * How much Redis memory one idle rate-limit key costs.
 *
 * Starts a private redis-server (never the shared one), creates 100,000 keys
 * through RedisRateLimitStore.consume() exactly as the gateway would (one
 * request each, 900 s window, key names shaped like "kp:<20-char access key>"),
 * and divides the used_memory delta from INFO memory by the key count.
 *
 *   node --import tsx bench/redis-key-memory.ts [count] [--no-write]
 *
 * Writes the `redis-key-memory` section of bench/RESULTS.md unless --no-write.
 */
import { Redis } from 'ioredis';
import { RedisRateLimitStore } from '../src/ratelimit/index.js';
import { startRedisServer } from '../test/helpers/redis-server.js';
import { machine, writeSection } from './lib.js';

const args = process.argv.slice(2);
const WRITE = !args.includes('--no-write');
const COUNT = Number(args.find((a) => !a.startsWith('--')) ?? 100_000);
const command = `node --import tsx bench/redis-key-memory.ts${args.length ? ` ${args.join(' ')}` : ''}`;
const BATCH = 2_000;

async function usedMemory(client: Redis): Promise<number> {
  const info = await client.info('memory');
  const m = /^used_memory:(\d+)/m.exec(info);
  if (!m) throw new Error('no used_memory in INFO memory');
  return Number(m[1]);
}

const server = await startRedisServer();
const admin = new Redis(server.url);
// Generous timeout: this measures memory, not latency, and 2,000 pipelined scripts take a while.
const store = new RedisRateLimitStore({ url: server.url, commandTimeoutMs: 5_000 });
try {
  await store.ready();
  const accessKey = (i: number) => `kp:AKIA${String(i).padStart(16, '0')}`;
  const before = await usedMemory(admin);
  const t0 = performance.now();
  for (let start = 0; start < COUNT; start += BATCH) {
    const batch = [];
    for (let i = start; i < Math.min(start + BATCH, COUNT); i++) batch.push(store.consume(accessKey(i), 10_000, 900));
    await Promise.all(batch);
  }
  const seconds = (performance.now() - t0) / 1000;
  const after = await usedMemory(admin);
  const keys = await admin.dbsize();
  const sample = store.redisKey(accessKey(0));
  const value = await admin.get(sample);
  const perKey = (after - before) / COUNT;
  const lines = [
    `redis-server ${(await admin.info('server')).match(/redis_version:(\S+)/)?.[1]}`,
    `keys created: ${keys} in ${seconds.toFixed(2)} s (${Math.round(COUNT / seconds)} consume/s, one client)`,
    `sample key: \`${sample}\` (${sample.length} bytes), value: \`${value}\` (${value?.length} bytes), PTTL ${await admin.pttl(sample)} ms`,
    `used_memory: ${before} → ${after} bytes, delta ${after - before}`,
    `bytes per key: **${perKey.toFixed(1)}**`,
  ];
  console.log(lines.join('\n'));
  if (WRITE) {
    writeSection(
      'redis-key-memory',
      [
        '## Redis memory per idle rate-limit key',
        '',
        `- command: \`${command}\``,
        `- date: ${new Date().toISOString()}`,
        `- machine: ${machine()}`,
        `- method: ${COUNT} keys created through RedisRateLimitStore.consume() (one request each, 900 s window) on a private redis-server; used_memory delta from INFO memory / key count`,
        '',
        ...lines.map((l) => `- ${l}`),
        '',
        `<!-- data ${JSON.stringify({ script: 'redis-key-memory', date: new Date().toISOString(), command, bytesPerKey: Number(perKey.toFixed(1)) })} -->`,
      ].join('\n'),
    );
  }
} finally {
  await store.close();
  admin.disconnect();
  await server.stop();
}
