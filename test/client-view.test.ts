import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { addressBucket, resolveClient, TrustedProxies } from '../src/http/client-view.js';

describe('client view', () => {
  it('buckets IPv6 addresses by /64 and keeps IPv4 addresses whole', () => {
    assert.equal(addressBucket('203.0.113.9'), '203.0.113.9');
    assert.equal(addressBucket('2001:db8:1:2:3:4:5:6'), '2001:db8:1:2::/64');
    assert.equal(addressBucket('2001:db8:1:2::1'), '2001:db8:1:2::/64');
    assert.equal(addressBucket('2001:DB8:1:2:ffff::9'), '2001:db8:1:2::/64');
    assert.equal(addressBucket('2001:0db8::'), '2001:db8:0:0::/64');
    assert.equal(addressBucket('::1'), '0:0:0:0::/64');
    assert.equal(addressBucket('fe80::1:2'), 'fe80:0:0:0::/64');
    assert.equal(addressBucket('::ffff:192.0.2.1'), '0:0:0:0::/64');
    assert.equal(addressBucket(''), '');
  });

  it('believes X-Forwarded-* only from trusted peers, and takes the nearest untrusted hop', () => {
    const trusted = new TrustedProxies(['10.0.0.0/8', '::1']);
    const headers = { host: 'gw.internal', 'x-forwarded-host': 'api.example.com, proxy.internal', 'x-forwarded-for': '198.51.100.7, 10.1.2.3' };
    assert.deepEqual(resolveClient('10.9.9.9', headers, trusted), { address: '198.51.100.7', host: 'api.example.com', viaTrustedProxy: true });
    assert.deepEqual(resolveClient('192.0.2.1', headers, trusted), { address: '192.0.2.1', host: 'gw.internal', viaTrustedProxy: false });
    assert.deepEqual(resolveClient('::ffff:10.0.0.1', { host: 'h', 'x-forwarded-for': 'junk, 203.0.113.5' }, trusted).address, '203.0.113.5');
    assert.throws(() => new TrustedProxies(['not-an-ip']));
  });
});
