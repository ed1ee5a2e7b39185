/**
 * README "Who pays for a request": IPv6 clients are counted per /64, over HTTP, on both stores.
 * The gateway trusts 127.0.0.1 as a proxy, so X-Forwarded-For names the IPv6 client.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { ALICE, startGateway, type Response, type TestGateway } from './helpers/gateway.js';
import { startRedisServer, type TestRedisServer } from './helpers/redis-server.js';
import { assertProblem } from './helpers/problems.js';

const ANON = 4;
const remaining = (res: Response) => Number(res.headers['x-ratelimit-remaining']);
const policy = (res: Response) => String(res.headers['ratelimit-policy']);

for (const store of ['memory', 'redis'] as const) {
  describe(`README: IPv6 clients share one anonymous bucket per /64 (${store} store)`, () => {
    let redis: TestRedisServer | undefined;
    let gw: TestGateway;
    before(async () => {
      redis = store === 'redis' ? await startRedisServer() : undefined;
      gw = await startGateway({
        keypairs: [ALICE],
        config: [
          '[server]',
          'trusted_proxies = ["127.0.0.1"]',
          '[ratelimit]',
          `store = "${store}"`,
          ...(redis ? [`redis_url = "${redis.url}"`, 'redis_timeout_ms = 1000'] : []),
          `anonymous_limit = ${ANON}`,
        ].join('\n'),
      });
    });
    after(async () => {
      await gw?.stop();
      await redis?.stop();
    });

    const from = (address: string, target = '/') => gw.request({ method: 'GET', target, headers: { 'X-Forwarded-For': address } });

    it('addresses in the same /64, however written, spend one bucket; another /64 has its own', async () => {
      // Four spellings inside 2001:db8:1:2::/64: compressed, full with leading zeros, upper case, another host.
      const sameSlash64 = ['2001:db8:1:2::a', '2001:0db8:0001:0002:ffff:0000:0000:0001', '2001:DB8:1:2:DEAD:BEEF:0:7', '2001:db8:1:2::ffff:192.0.2.1'];
      const seen: number[] = [];
      for (const [i, address] of sameSlash64.entries()) {
        const res = await from(address, i % 2 ? '/auth/test' : '/');
        assert.notEqual(res.status, 429, `${address}: ${res.text}`);
        assert.match(policy(res), /^"anonymous";q=4;/);
        seen.push(remaining(res));
      }
      assert.deepEqual(seen, [3, 2, 1, 0], 'one counter for the whole /64');
      // The /64 is spent: a fifth address in it is refused...
      const refused = await from('2001:db8:1:2:1:2:3:4');
      assertProblem(refused, 429, 'rate-limit-exceeded');
      assert.match(String(refused.headers['retry-after']), /^\d+$/);

      // ...while the neighbouring /64s (differing in the 4th group, and in the 3rd) start fresh.
      for (const neighbour of ['2001:db8:1:3::a', '2001:db8:2:2::a']) {
        const res = await from(neighbour);
        assert.equal(res.status, 200, `${neighbour}: ${res.text}`);
        assert.equal(remaining(res), ANON - 1, `${neighbour} is a bucket of its own`);
      }
      // IPv4 clients are still counted per address.
      assert.equal(remaining(await from('192.0.2.10')), ANON - 1);
      assert.equal(remaining(await from('192.0.2.11')), ANON - 1);
      // A signed request from the spent /64 is charged to its keypair, not the address.
      const signed = await gw.signed({ method: 'GET', target: '/auth/test', as: ALICE, headers: { 'X-Forwarded-For': '2001:db8:1:2::a' } });
      assert.equal(signed.status, 200, signed.text);

      if (redis) {
        const inspect = new Redis(redis.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
        try {
          await inspect.connect();
          const keys = (await inspect.keys('kg:rl:ip:*')).sort();
          assert.ok(keys.some((k) => /^kg:rl:ip:2001:db8:1:2::\/64$/.test(k)), `the /64 is one key in Redis: ${keys.join(' ')}`);
          assert.ok(!keys.some((k) => k.includes('dead') || k.includes('ffff')), `no per-address keys inside the /64: ${keys.join(' ')}`);
        } finally {
          inspect.disconnect();
        }
      }
    });
  });
}
