/**
 * bench/auth.ts with `[ratelimit] store = "redis"` against a private
 * redis-server (started on a free port, --save "" --appendonly no) — same
 * options as bench/auth.ts. Goal: ≥ 0.70 of bare Koa.
 *
 *   node --import tsx bench/auth-redis.ts [options of bench/auth.ts]
 */
import { parseOptions, runAuthBench } from './auth.js';

await runAuthBench(parseOptions(process.argv.slice(2), { store: 'redis' }, 'bench/auth-redis.ts'));
