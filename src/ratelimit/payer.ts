import { addressBucket } from '../http/client-view.js';
import type { Keypair } from '../keypairs/keypair.js';

/** Who a request is charged to. */
export interface Payer {
  /** Store key: `ak:<access key>` for verified requests, `ip:<address bucket>` otherwise. */
  key: string;
  limit: number;
  /** Policy name shown in the IETF RateLimit fields. */
  policy: 'keypair' | 'anonymous';
}

/** The limits payers get when their keypair names none. */
export interface PayerLimits {
  /** Requests per window for an address (unsigned or failed requests). */
  anonymous: number;
  /** Requests per window for a keypair without its own `rate_limit`. */
  keypair: number;
}

/** An address pays per bucket (IPv4 address, IPv6 /64), so one client cannot spread over its own addresses. */
export function addressPayer(address: string, limits: PayerLimits): Payer {
  return { key: `ip:${addressBucket(address)}`, limit: limits.anonymous, policy: 'anonymous' };
}

export function keypairPayer(keypair: Keypair, limits: PayerLimits): Payer {
  return { key: `ak:${keypair.accessKey}`, limit: keypair.rateLimit ?? limits.keypair, policy: 'keypair' };
}
