#!/usr/bin/env node
/**
 * Wall time of one `kernelgate sign GET /auth/test --headers-only` (a fresh
 * node process each time, as a shell script calling it would pay).
 *
 *   node bench/cli-sign.mjs [--runs 21] [--bin bin/kernelgate.js]
 *
 * The keypair comes from the environment (KERNELGATE_ACCESS_KEY /
 * KERNELGATE_SECRET_KEY); a fixed throw-away one is used when they are unset.
 * Nothing is sent: --headers-only only signs.
 */
import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: { runs: { type: 'string', default: '21' }, bin: { type: 'string', default: 'bin/kernelgate.js' } },
});
const runs = Number(values.runs);
const bin = resolve(values.bin);
const env = {
  ...process.env,
  KERNELGATE_ACCESS_KEY: process.env.KERNELGATE_ACCESS_KEY || 'AKIABENCHCLISIGN0001',
  KERNELGATE_SECRET_KEY: process.env.KERNELGATE_SECRET_KEY || 'benchSecretKey0000000000000000000000000B',
};
const times = [];
for (let i = 0; i < runs + 1; i++) {
  const start = process.hrtime.bigint();
  const r = spawnSync(process.execPath, [bin, 'sign', 'GET', '/auth/test', '--headers-only'], { env, encoding: 'utf8' });
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  if (r.status !== 0 || !r.stdout.includes('Authorization:')) {
    console.error(r.stderr || r.stdout);
    process.exit(1);
  }
  if (i > 0) times.push(ms); // the first run warms the disk cache
}
times.sort((a, b) => a - b);
const q = (p) => times[Math.min(times.length - 1, Math.floor(p * times.length))];
console.log(JSON.stringify({ bin, runs, median_ms: Math.round(q(0.5)), min_ms: Math.round(times[0]), p90_ms: Math.round(q(0.9)) }));
