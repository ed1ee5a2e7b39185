// The framework floor: Koa + @koa/router + three pass-through middlewares and a
// two-stage route chain, the same shape as the gateway's hot path with none of
// its work (no auth, limits, logs, metrics). Compared with bare-koa.mjs it shows
// what the structure alone costs.
//
// The shape matches src/server/gateway.ts at ad15a97 for signed GET /auth/test:
// app.use × 3 (access log + metrics in a try/finally, problemMiddleware's
// try/catch, the Host-header check), router.routes(), then the route's own chain
// [verifySigned (auth + rate-limit charge), validate (the echo query schema),
// handler]. If the gateway's stage count changes, pass --app N / --route M
// (pass-through app middlewares after the two wrappers / route stages before the
// handler) so the floor keeps the gateway's shape. Since src/pipeline.ts composes
// each route's stages (authenticate, rate limit, validate, ...) into one router
// middleware that calls them as plain functions, the gateway's shape is --app 1
// --route 0.
//   node bench/koa-router-floor.mjs --port N [--app 1] [--route 2]   (or: PORT)
import { parseArgs } from 'node:util';
import Koa from 'koa';
import Router from '@koa/router';

const { values, positionals } = parseArgs({
  options: { port: { type: 'string' }, app: { type: 'string' }, route: { type: 'string' } },
  allowPositionals: true,
});
const appPasses = Number(values.app ?? 1);
const routeStages = Number(values.route ?? 2);

const app = new Koa();
const router = new Router();
const pass = async (_ctx, next) => {
  await next();
};
router.get('/auth/test', ...Array.from({ length: routeStages }, () => pass), (ctx) => {
  ctx.body = { authorized: 'yes', echo: null };
});
app.use(async (_ctx, next) => {
  try {
    await next();
  } finally {
    /* the access-log middleware's place */
  }
});
app.use(async (ctx, next) => {
  try {
    await next();
  } catch {
    ctx.status = 500;
  }
});
for (let i = 0; i < appPasses; i++) app.use(pass);
app.use(router.routes());
const server = app.listen(Number(values.port ?? positionals[0]), '127.0.0.1');
// Exit through process.exit so --cpu-prof writes its profile.
for (const signal of ['SIGINT', 'SIGTERM']) process.once(signal, () => server.close(() => process.exit(0)));
