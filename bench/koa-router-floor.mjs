// The framework floor: Koa + @koa/router + three pass-through middlewares and a
// two-stage route chain, the same shape as the gateway's hot path with none of
// its work (no auth, limits, logs, metrics). Compared with bare-koa.mjs it shows
// what the structure alone costs.
//   node bench/koa-router-floor.mjs PORT
import Koa from 'koa';
import Router from '@koa/router';

const app = new Koa();
const router = new Router();
const pass = async (_ctx, next) => {
  await next();
};
router.get('/auth/test', pass, pass, (ctx) => {
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
app.use(pass);
app.use(router.routes());
app.listen(Number(process.argv[2]), '127.0.0.1');
