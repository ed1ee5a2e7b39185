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
    // X-Forwarded-Host: the rightmost value, the one the trusted peer added (issue 7 item 11).
    assert.deepEqual(resolveClient('10.9.9.9', headers, trusted), { address: '198.51.100.7', host: 'proxy.internal', viaTrustedProxy: true });
    assert.deepEqual(resolveClient('192.0.2.1', headers, trusted), { address: '192.0.2.1', host: 'gw.internal', viaTrustedProxy: false });
    assert.deepEqual(resolveClient('::ffff:10.0.0.1', { host: 'h', 'x-forwarded-for': 'junk, 203.0.113.5' }, trusted).address, '203.0.113.5');
    assert.deepEqual(resolveClient('10.0.0.1', { host: 'h', 'x-forwarded-for': '' }, trusted).address, '10.0.0.1');
    assert.throws(() => new TrustedProxies(['not-an-ip']));
  });

  it('stops the X-Forwarded-For walk at the first unparseable hop, which is the client (issue 7 item 11)', () => {
    const trusted = new TrustedProxies(['10.0.0.0/8']);
    const walk = (xff: string | string[]) => resolveClient('10.0.0.1', { host: 'h', 'x-forwarded-for': xff }, trusted).address;
    // Left of the unparseable hop is what the client wrote: never believed.
    assert.equal(walk('203.0.113.5, 1.2.3.4:5678'), '1.2.3.4');
    assert.equal(walk('203.0.113.5, 1.2.3.4:5678, 10.1.1.1'), '1.2.3.4');
    assert.equal(walk('203.0.113.5, [2001:db8::1]:80'), '2001:db8::1');
    assert.equal(walk('203.0.113.5, [::1]:80, 10.0.0.2'), '::1');
    assert.equal(walk('203.0.113.5, unknown'), 'unknown');
    assert.equal(walk('203.0.113.5, _hidden, 10.0.0.9'), '_hidden');
    assert.equal(walk('203.0.113.5, 10.0.0.7:99'), '10.0.0.7'); // a trusted address with a port is not a proxy hop
    assert.equal(walk(`203.0.113.5, ${'x'.repeat(100)}`), 'unknown');
    assert.equal(walk('203.0.113.5, "quoted"'), 'unknown');
    assert.equal(walk('203.0.113.5, , 10.0.0.2'), 'unknown'); // an empty hop is unparseable too
    assert.equal(walk(['203.0.113.5', 'unknown, 10.0.0.2']), 'unknown');
    // Plain addresses walk as before: trusted ones are skipped, the first untrusted is the client.
    assert.equal(walk('198.51.100.1, 203.0.113.5, 10.0.0.2'), '203.0.113.5');
    assert.equal(walk('10.0.0.3, 10.0.0.2'), '10.0.0.3');
  });

  it('takes X-Forwarded-Host and X-Forwarded-Proto from the right, and only from trusted peers', () => {
    const trusted = new TrustedProxies(['10.0.0.0/8']);
    const view = resolveClient('10.0.0.1', { host: 'h', 'x-forwarded-host': 'evil.example, api.example.com', 'x-forwarded-proto': 'http, HTTPS' }, trusted);
    assert.equal(view.host, 'api.example.com');
    assert.equal(view.proto, 'https');
    assert.equal(resolveClient('10.0.0.1', { host: 'h', 'x-forwarded-host': ['evil.example', 'api.example.com'] }, trusted).host, 'api.example.com');
    assert.equal(resolveClient('10.0.0.1', { host: 'h', 'x-forwarded-host': 'api.example.com, ' }, trusted).host, 'h');
    assert.equal(resolveClient('10.0.0.1', { host: 'h', 'x-forwarded-proto': 'gopher' }, trusted).proto, undefined);
    const untrusted = resolveClient('192.0.2.1', { host: 'h', 'x-forwarded-host': 'a', 'x-forwarded-proto': 'https' }, trusted);
    assert.deepEqual(untrusted, { address: '192.0.2.1', host: 'h', viaTrustedProxy: false });
  });
});
