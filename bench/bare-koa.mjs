// Bare Koa hello-world: the baseline for bench/auth.ts. Plain JS so it runs
// with exactly the same node flags as the compiled gateway (no tsx loader).
//   node bench/bare-koa.mjs --port N [--host 127.0.0.1]
import { parseArgs } from 'node:util';
import Koa from 'koa';

const { values } = parseArgs({ options: { port: { type: 'string' }, host: { type: 'string' } } });
const app = new Koa();
app.use((ctx) => {
  ctx.body = { authorized: 'yes' };
});
const host = values.host ?? '127.0.0.1';
const server = app.listen(Number(values.port ?? 0), host, () => {
  process.stdout.write(`${JSON.stringify({ msg: 'bare koa listening', port: server.address().port })}\n`);
});
// Exit through process.exit so --cpu-prof writes its profile.
for (const signal of ['SIGINT', 'SIGTERM']) process.once(signal, () => server.close(() => process.exit(0)));
