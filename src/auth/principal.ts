import type { Keypair } from '../keypairs/keypair.js';
import { addressPayer, type Payer, type PayerLimits } from '../ratelimit/payer.js';

/** Who a request is, as authentication established it, and who pays for it. */
export type Principal = KeypairPrincipal | AnonymousPrincipal;

export interface KeypairPrincipal {
  keypair: Keypair;
  /** The authenticator that proved it (`backendai`: the HMAC signature). */
  scheme: string;
  /** The credential presented: the access key for HMAC, the key id for an API key (never the key). */
  credentialId: string;
  payer: Payer;
  /** What the credential may do: `read` (an API key of scope read) limits it to GET routes and inference. */
  scope?: 'read' | 'full';
}

/** Unsigned requests and failed authentications: the client address pays. */
export interface AnonymousPrincipal {
  keypair: undefined;
  scheme: 'anonymous';
  credentialId: undefined;
  payer: Payer;
}

export function anonymousPrincipal(address: string, limits: PayerLimits): AnonymousPrincipal {
  return { keypair: undefined, scheme: 'anonymous', credentialId: undefined, payer: addressPayer(address, limits) };
}
