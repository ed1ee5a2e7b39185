import { BlockList, isIP } from 'node:net';

/** Who the client is and which host it addressed, as far as we may believe. */
export interface ClientView {
  address: string;
  host: string;
  /** The peer is a trusted proxy, so X-Forwarded-* were honoured. */
  viaTrustedProxy: boolean;
  /** The scheme the client used, from a trusted proxy's (rightmost) X-Forwarded-Proto; absent otherwise. */
  proto?: 'http' | 'https';
}

function normalize(address: string): string {
  return address.startsWith('::ffff:') && isIP(address.slice(7)) === 4 ? address.slice(7) : address;
}

/** `trusted_proxies` entries are addresses or CIDR ranges, v4 or v6. */
export class TrustedProxies {
  private readonly list = new BlockList();
  readonly empty: boolean;

  constructor(entries: readonly string[]) {
    for (const entry of entries) {
      const [address, bits] = entry.split('/');
      const family = isIP(address) === 6 ? 'ipv6' : 'ipv4';
      if (isIP(address) === 0) throw new Error(`trusted_proxies: not an address: ${entry}`);
      if (bits === undefined) this.list.addAddress(address, family);
      else this.list.addSubnet(address, Number(bits), family);
    }
    this.empty = entries.length === 0;
  }

  has(address: string): boolean {
    if (this.empty) return false;
    const family = isIP(address);
    return family !== 0 && this.list.check(address, family === 6 ? 'ipv6' : 'ipv4');
  }
}

/**
 * The value the nearest proxy added: the last element of a comma-separated list
 * (repeated headers count in order). Earlier elements came from further away,
 * ultimately from the client, and are not believed.
 */
function lastValue(raw: string | string[] | undefined): string | undefined {
  const value = Array.isArray(raw) ? raw[raw.length - 1] : raw;
  if (value === undefined) return undefined;
  return value.slice(value.lastIndexOf(',') + 1).trim() || undefined;
}

const IPV4_WITH_PORT = /^(\d{1,3}(?:\.\d{1,3}){3}):\d{1,5}$/;
const BRACKETED_IPV6 = /^\[([0-9A-Fa-f:.]{2,45})\](?::\d{1,5})?$/;
/** Tokens kept as their own bucket: `unknown`, RFC 7239 obfuscated identifiers (`_hidden`), nothing odd. */
const OPAQUE_TOKEN = /^[A-Za-z0-9._-]{1,64}$/;

/**
 * One X-Forwarded-For hop. `plain` hops are bare addresses, the only ones that
 * can name a trusted proxy. Anything else stops the walk and is the client:
 * `1.2.3.4:5678` and `[::1]:80` as their address without the port (so a client
 * cannot get a fresh bucket per source port); `unknown` and other tokens as
 * themselves, one opaque bucket each (odd or long ones all share "unknown").
 */
function parseHop(raw: string): { address: string; plain: boolean } {
  const hop = raw.trim();
  const bare = normalize(hop);
  if (isIP(bare) !== 0) return { address: bare, plain: true };
  if (hop.length <= 64) {
    const v4 = IPV4_WITH_PORT.exec(hop);
    if (v4 && isIP(v4[1]) === 4) return { address: v4[1], plain: false };
    const v6 = BRACKETED_IPV6.exec(hop);
    if (v6 && isIP(v6[1]) === 6) return { address: normalize(v6[1]), plain: false };
    if (OPAQUE_TOKEN.test(hop)) return { address: hop, plain: false };
  }
  return { address: 'unknown', plain: false };
}

/**
 * X-Forwarded-Host / -For / -Proto are believed only from trusted peers; anyone
 * else could name any host (changing what was signed) or any address (spending
 * another client's anonymous quota). From a trusted peer, Host and Proto are the
 * rightmost values (the ones that peer added), and the client address is found by
 * walking X-Forwarded-For from the right: the first hop that is not a trusted
 * proxy, or that is not a bare address at all, is the client and the walk stops
 * there (what lies left of it was written by the client and proves nothing).
 */
export function resolveClient(
  remoteAddress: string | undefined,
  headers: Record<string, string | string[] | undefined>,
  trusted: TrustedProxies,
): ClientView {
  const peer = normalize(remoteAddress ?? '');
  const host = (headers.host as string | undefined) ?? '';
  if (!trusted.has(peer)) return { address: peer, host, viaTrustedProxy: false };
  let address = peer;
  const forwardedFor = headers['x-forwarded-for'];
  const list = Array.isArray(forwardedFor) ? forwardedFor.join(',') : forwardedFor;
  if (list !== undefined && list.trim() !== '') {
    const hops = list.split(',');
    for (let i = hops.length - 1; i >= 0; i--) {
      const hop = parseHop(hops[i]);
      address = hop.address;
      if (!hop.plain || !trusted.has(hop.address)) break;
    }
  }
  const view: ClientView = { address, host: lastValue(headers['x-forwarded-host']) ?? host, viaTrustedProxy: true };
  const proto = lastValue(headers['x-forwarded-proto'])?.toLowerCase();
  if (proto === 'http' || proto === 'https') view.proto = proto;
  return view;
}

/**
 * The rate-limit bucket of an address: the address itself for IPv4, its /64
 * for IPv6, since one subscriber usually holds a whole /64 and could otherwise
 * rotate through 2^64 fresh anonymous quotas.
 */
export function addressBucket(address: string): string {
  if (isIP(address) !== 6) return address;
  const [head, tail = ''] = address.split('::');
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  // An embedded IPv4 tail (::ffff:1.2.3.4) lies in the last 64 bits; it never changes the /64.
  const groups = address.includes('::') ? [...left, ...Array(Math.max(0, 8 - left.length - right.length)).fill('0'), ...right] : left;
  return `${groups.slice(0, 4).map((g) => (g || '0').toLowerCase().replace(/^0+(?=.)/, '')).join(':')}::/64`;
}
