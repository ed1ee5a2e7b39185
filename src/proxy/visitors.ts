import { checkApiKey, type ApiKeyDeps } from '../auth/authenticators/apikey.js';
import { bearerToken, ProviderDown, TokenRefused, tokenVerifier, type OidcIssuerConfig } from '../auth/authenticators/oidc.js';
import type { Keypair } from '../keypairs/keypair.js';
import { ApiError } from '../problems/api-error.js';

/** What the proxy knows of a visitor's credentials: its headers, and its form fields on demand. */
export interface VisitorCredentials {
  header(name: string): string | undefined;
  /** DeepStack's `api_key` / `admin_key` of a urlencoded or multipart body (reads the body). */
  formFields(): Promise<{ api_key?: string; admin_key?: string }>;
}

export type VisitorScheme = 'apikey' | 'oidc';

export interface VisitorIdentityOptions {
  schemes: readonly VisitorScheme[];
  /** The keypair folder's indexes (API key hashes, OIDC subjects). */
  apiKeys: ApiKeyDeps['lookup'];
  bySubject(subject: string): Keypair | undefined;
  issuers: readonly OidcIssuerConfig[];
  /** Failed attempts, with the reason (never the credential). */
  warn(fields: Record<string, unknown>): void;
}

/**
 * Per-visitor identity for `kernelgate proxy --auth apikey,oidc`: a bearer token (`Authorization:
 * Bearer <JWT>` or a bare JWT; "oidc"), an `x-api-key` header or DeepStack `api_key` / `admin_key` form
 * field ("apikey") names a keypair of the folder, checked exactly as the gateway checks it. The proxy
 * then signs upstream with that keypair, so each visitor has its own quota and sessions.
 */
export function visitorIdentity(opts: VisitorIdentityOptions): (visitor: VisitorCredentials) => Promise<Keypair> {
  const apikey = opts.schemes.includes('apikey');
  const verify = opts.schemes.includes('oidc') ? tokenVerifier({ issuers: opts.issuers, bySubject: opts.bySubject }) : undefined;
  const none = () =>
    new ApiError(401, 'auth-failed', `No credentials were given: send ${[apikey ? 'your API key as x-api-key' : '', verify ? 'a bearer token' : ''].filter(Boolean).join(' or ')}.`);
  const refused = (scheme: VisitorScheme, error: unknown): ApiError => {
    if (error instanceof ApiError) {
      opts.warn({ scheme, reason: error.logFields?.reason ?? error.message });
      return error;
    }
    opts.warn({ scheme, reason: (error as Error).message });
    if (error instanceof ProviderDown) return new ApiError(503, 'service-unavailable', 'The OpenID Provider cannot be reached; retry shortly.', { headers: { 'Retry-After': '5' } });
    return new ApiError(401, 'auth-failed', 'The bearer token is not accepted.');
  };

  return async (visitor) => {
    const apiKeyHeader = visitor.header('x-api-key');
    const token = verify ? bearerToken(visitor.header('authorization') ?? '') : undefined;
    if (token !== undefined) {
      if (apiKeyHeader) throw new ApiError(400, 'invalid-auth-params', 'Send one credential: a bearer token or an API key.');
      try {
        return (await verify!(token)).keypair;
      } catch (error) {
        if (!(error instanceof TokenRefused) && !(error instanceof ProviderDown)) throw error;
        throw refused('oidc', error);
      }
    }
    if (!apikey) throw none();
    try {
      if (apiKeyHeader) return checkApiKey(apiKeyHeader, false, opts.apiKeys, Date.now()).keypair;
      const fields = await visitor.formFields();
      if (fields.api_key !== undefined && fields.admin_key !== undefined) throw new ApiError(400, 'invalid-auth-params', 'Send either api_key or admin_key, not both.');
      const presented = fields.admin_key ?? fields.api_key;
      if (presented === undefined || presented === '') throw none();
      return checkApiKey(presented, fields.admin_key !== undefined, opts.apiKeys, Date.now()).keypair;
    } catch (error) {
      throw refused('apikey', error);
    }
  };
}
