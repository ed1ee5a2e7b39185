// Bare Koa vs the Koa + router floor, alternating, 6 s each, 50 connections:
//   node bench/floor.mjs
import { spawn } from 'node:child_process';
import autocannon from 'autocannon';

const servers = [
  ['bare koa', spawn(process.execPath, ['bench/bare-koa.mjs', '--port', '18192'], { stdio: 'ignore' }), 18192],
  ['koa + router + middlewares', spawn(process.execPath, ['bench/koa-router-floor.mjs', '18191'], { stdio: 'ignore' }), 18191],
];
await new Promise((r) => setTimeout(r, 1000));
const results = {};
for (let round = 0; round < 3; round++) {
  for (const [name, , port] of round % 2 ? [...servers].reverse() : servers) {
    const r = await autocannon({ url: `http://127.0.0.1:${port}/auth/test`, connections: 50, duration: 6 });
    (results[name] ??= []).push(Math.round(r.requests.average));
  }
}
for (const [, proc] of servers) proc.kill();
for (const [name, rps] of Object.entries(results)) console.log(`${name}: ${rps.join(', ')} req/s`);
