import { BlockList, isIP } from 'node:net';

/** Who the client is and which host it addressed, as far as we may believe. */
export interface ClientView {
  address: string;
  host: string;
  /** The peer is a trusted proxy, so X-Forwarded-* were honoured. */
  viaTrustedProxy: boolean;
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

function firstValue(raw: string | string[] | undefined): string | undefined {
  const value = Array.isArray(raw) ? raw[0] : raw;
  return value?.split(',')[0]?.trim() || undefined;
}

/**
 * X-Forwarded-Host / -For are believed only from trusted peers; anyone else
 * could name any host (changing what was signed) or any address (spending
 * another client's anonymous quota).
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
  if (forwardedFor !== undefined) {
    const hops = (Array.isArray(forwardedFor) ? forwardedFor.join(',') : forwardedFor)
      .split(',')
      .map((hop) => normalize(hop.trim()))
      .filter((hop) => isIP(hop) !== 0);
    // Walk back from the nearest hop: the first one we do not trust is the client.
    for (let i = hops.length - 1; i >= 0; i--) {
      address = hops[i];
      if (!trusted.has(hops[i])) break;
    }
  }
  return { address, host: firstValue(headers['x-forwarded-host']) ?? host, viaTrustedProxy: true };
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
