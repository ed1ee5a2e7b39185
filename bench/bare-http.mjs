// Bare node:http hello-world: the lowest baseline for bench/auth-baselines.ts
// (no framework at all). Answers every request like GET /auth/test does, with a
// JSON body and an explicit Content-Length, and ignores all request headers.
//   node bench/bare-http.mjs --port N [--host 127.0.0.1]
import { createServer } from 'node:http';
import { parseArgs } from 'node:util';

const { values } = parseArgs({ options: { port: { type: 'string' }, host: { type: 'string' } } });
const body = Buffer.from(JSON.stringify({ authorized: 'yes', echo: null }));
const server = createServer((_req, res) => {
  res.writeHead(200, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': body.length });
  res.end(body);
});
const host = values.host ?? '127.0.0.1';
server.listen(Number(values.port ?? 0), host, () => {
  process.stdout.write(`${JSON.stringify({ msg: 'bare node:http listening', port: server.address().port })}\n`);
});
// Exit through process.exit so --cpu-prof writes its profile.
for (const signal of ['SIGINT', 'SIGTERM']) process.once(signal, () => server.close(() => process.exit(0)));
