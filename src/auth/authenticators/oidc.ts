import { createRemoteJWKSet, decodeJwt, errors as joseErrors, jwtVerify, type JWTPayload } from 'jose';
import type { Logger } from 'pino';
import { ApiError } from '../../problems/api-error.js';
import type { GatewayContext } from '../../http/context.js';
import { requestHasBody } from '../../http/raw-body.js';
import { readSignedBody } from '../../http/read-body.js';
import { isUsable, type Keypair } from '../../keypairs/keypair.js';
import { keypairPayer, type PayerLimits } from '../../ratelimit/payer.js';
import type { AuthorizationParams } from '../../signing/authorization.js';
import { apiKeyOwner, type Authenticator, type ApiKeyResolver } from '../authenticate.js';
import type { KeypairPrincipal } from '../principal.js';

export interface OidcIssuerConfig {
  issuer: string;
  jwks_uri: string;
  audiences: string[];
  client_ids: string[];
  token_use: 'any' | 'access' | 'id';
  subject_claim: string;
  algorithms: string[];
  clock_tolerance_seconds: number;
  /** Least time between two refetches on an unknown kid (default 30). */
  jwks_refetch_cooldown_seconds?: number;
}

export interface TokenVerifierDeps {
  issuers: readonly OidcIssuerConfig[];
  /** The keypair whose oidc_subjects holds a subject. */
  bySubject(subject: string): Keypair | undefined;
  /** Bounded wait for the provider (discovery and JWKS), ms. */
  timeoutMs?: number;
  /** Least time between two JWKS refetches (an unknown kid), ms. */
  cooldownMs?: number;
}

export interface OidcDeps extends TokenVerifierDeps {
  bodyLimit: number;
  limits: PayerLimits;
  apiVersion: string;
  log: Logger;
  refuseBeforeBody(ctx: GatewayContext, claimed: Keypair | undefined): Promise<void>;
  /** API keys, for `x-api-key` next to a token (the key's keypair is the acting owner); absent: such a request is a 400. */
  apiKeys?: ApiKeyResolver;
}

const BEARER = /^Bearer\s+(\S+)$/i;
const BARE_JWT = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;
/** jose failures that mean "this token is not good" (401); anything else is the provider's fault (503). */
const TOKEN_FAULTS = new Set([
  'ERR_JWT_EXPIRED', 'ERR_JWT_CLAIM_VALIDATION_FAILED', 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED', 'ERR_JOSE_ALG_NOT_ALLOWED',
  'ERR_JWS_INVALID', 'ERR_JWT_INVALID', 'ERR_JWKS_NO_MATCHING_KEY', 'ERR_JWKS_MULTIPLE_MATCHING_KEYS', 'ERR_JOSE_NOT_SUPPORTED',
]);

/** The bearer token in an Authorization value (`Bearer <JWT>` or a bare JWT), or undefined. */
export function bearerToken(authorization: string): string | undefined {
  const m = BEARER.exec(authorization);
  if (m) return m[1];
  return BARE_JWT.test(authorization) ? authorization : undefined;
}

/** A 401 whose reason goes to the server log only. */
export class TokenRefused extends Error {}
/** The provider could not be asked (down, slow, or its discovery document is wrong): a 503. */
export class ProviderDown extends Error {}

interface Issuer {
  config: OidcIssuerConfig;
  jwks: ReturnType<typeof createRemoteJWKSet> | undefined;
  discovering: Promise<ReturnType<typeof createRemoteJWKSet>> | undefined;
}

/**
 * Verifies OIDC bearer tokens (jose): the issuer is chosen by the token's unverified `iss` among the
 * configured ones, then the token is verified against that issuer's JWKS (from jwks_uri or the discovery
 * document, fetched once), with algorithms, `iss`, `exp`/`nbf` (tolerance), audience or Cognito client_id
 * and token_use checked. The subject claim names the keypair through its oidc_subjects. Throws
 * TokenRefused (401) or ProviderDown (503). Shared by the gateway and `kernelgate proxy --auth oidc`.
 */
export function tokenVerifier(deps: TokenVerifierDeps): (token: string) => Promise<{ keypair: Keypair; subject: string }> {
  const timeoutMs = deps.timeoutMs ?? 2000;
  const cooldownMs = deps.cooldownMs ?? 30_000;
  const issuers = new Map<string, Issuer>();
  for (const config of deps.issuers) {
    if (config.audiences.length === 0 && config.client_ids.length === 0) {
      throw new Error(`auth.oidc issuer ${config.issuer}: set audiences or client_ids (a token for any audience is not accepted)`);
    }
    if (config.algorithms.some((a) => a === 'none' || /^HS/i.test(a))) {
      throw new Error(`auth.oidc issuer ${config.issuer}: "none" and HMAC algorithms are not allowed`);
    }
    issuers.set(config.issuer, { config, jwks: undefined, discovering: undefined });
  }
  const remote = (uri: string, config: OidcIssuerConfig) =>
    createRemoteJWKSet(new URL(uri), {
      timeoutDuration: timeoutMs,
      cooldownDuration: config.jwks_refetch_cooldown_seconds !== undefined ? config.jwks_refetch_cooldown_seconds * 1000 : cooldownMs,
      cacheMaxAge: Infinity,
    });

  async function jwksOf(issuer: Issuer): Promise<ReturnType<typeof createRemoteJWKSet>> {
    if (issuer.jwks) return issuer.jwks;
    if (issuer.config.jwks_uri !== '') return (issuer.jwks = remote(issuer.config.jwks_uri, issuer.config));
    issuer.discovering ??= (async () => {
      const url = `${issuer.config.issuer.replace(/\/$/, '')}/.well-known/openid-configuration`;
      const response = await fetch(url, { signal: AbortSignal.timeout(timeoutMs), redirect: 'error' });
      if (!response.ok) throw new Error(`discovery document: HTTP ${response.status}`);
      const doc = (await response.json()) as { jwks_uri?: unknown; issuer?: unknown };
      // OpenID Connect Discovery 1.0 §4.3: the document must name exactly the issuer it was fetched for;
      // otherwise its keys could be another issuer's, and tokens "from" this issuer would verify against them.
      if (doc.issuer !== issuer.config.issuer) {
        throw new Error(`discovery document names issuer ${JSON.stringify(String(doc.issuer).slice(0, 200))}, not ${JSON.stringify(issuer.config.issuer)}`);
      }
      if (typeof doc.jwks_uri !== 'string') throw new Error('discovery document has no jwks_uri');
      return (issuer.jwks = remote(doc.jwks_uri, issuer.config));
    })().finally(() => {
      issuer.discovering = undefined;
    });
    return issuer.discovering;
  }

  return async function verify(token: string): Promise<{ keypair: Keypair; subject: string }> {
    let unverified: JWTPayload;
    try {
      unverified = decodeJwt(token);
    } catch {
      throw new TokenRefused('not a JWT');
    }
    const issuer = typeof unverified.iss === 'string' ? issuers.get(unverified.iss) : undefined;
    if (issuer === undefined) throw new TokenRefused('unknown issuer');
    const c = issuer.config;
    let jwks: ReturnType<typeof createRemoteJWKSet>;
    try {
      jwks = await jwksOf(issuer);
    } catch (error) {
      throw new ProviderDown(`discovery failed: ${(error as Error).message}`);
    }
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, jwks, {
        issuer: c.issuer,
        algorithms: c.algorithms,
        clockTolerance: c.clock_tolerance_seconds,
        requiredClaims: ['exp'],
      }));
    } catch (error) {
      const code = (error as { code?: string }).code;
      if (error instanceof joseErrors.JOSEError && code !== undefined && TOKEN_FAULTS.has(code)) {
        throw new TokenRefused(`${code}: ${error.message}`);
      }
      throw new ProviderDown(`JWKS unavailable: ${code ?? (error as Error).message}`);
    }
    if (payload.aud !== undefined) {
      const auds = Array.isArray(payload.aud) ? payload.aud : [payload.aud];
      const accepted = [...c.audiences, ...c.client_ids];
      if (!auds.some((a) => accepted.includes(a))) throw new TokenRefused('audience not accepted');
    } else if (typeof payload.client_id !== 'string' || !c.client_ids.includes(payload.client_id)) {
      throw new TokenRefused('no aud and client_id not accepted');
    }
    if (c.token_use !== 'any' && payload.token_use !== c.token_use) throw new TokenRefused(`token_use is not ${c.token_use}`);
    const subject = payload[c.subject_claim];
    if (typeof subject !== 'string' || subject === '') throw new TokenRefused(`no ${c.subject_claim} claim`);
    const keypair = deps.bySubject(subject);
    if (keypair === undefined) throw new TokenRefused('no keypair claims this subject');
    if (!isUsable(keypair, Date.now())) throw new TokenRefused('keypair inactive or expired');
    return { keypair, subject };
  };
}

/** The OIDC authenticator: a verified bearer token (tokenVerifier), x-api-key next to it naming the owner. */
export function oidcAuthenticator(deps: OidcDeps): Authenticator {
  const verify = tokenVerifier(deps);
  const principals = new WeakMap<Keypair, KeypairPrincipal>();
  const principalOf = (keypair: Keypair, subject: string): KeypairPrincipal => {
    let p = principals.get(keypair);
    if (p === undefined || p.credentialId !== subject) {
      p = { keypair, scheme: 'oidc', credentialId: subject, payer: keypairPayer(keypair, deps.limits) };
      principals.set(keypair, p);
    }
    return p;
  };

  return {
    scheme: 'oidc',
    claims: (ctx) => bearerToken(ctx.get('authorization')) !== undefined,
    async authenticate(ctx) {
      const token = bearerToken(ctx.get('authorization'));
      let verified: { keypair: Keypair; subject: string };
      try {
        if (token === undefined) throw new TokenRefused('no bearer token');
        verified = await verify(token);
        // The superuser role sends its own API key next to its own token: that key names no other owner.
        const keyOwner = apiKeyOwner(ctx, deps.apiKeys);
        ctx.state.credentialOwner = keyOwner === verified.keypair.accessKey ? undefined : keyOwner;
      } catch (error) {
        if (error instanceof ApiError && error.status === 400) throw error;
        // The reason goes to the server log (never the token); the client gets the one 401 or a 503.
        deps.log.warn({ reqId: ctx.state.reqId, scheme: 'oidc', client: ctx.state.client.address, reason: (error as Error).message }, 'authentication failed');
        if (error instanceof ProviderDown) {
          throw new ApiError(503, 'service-unavailable', 'The OpenID Provider cannot be reached; retry shortly.', { headers: { 'Retry-After': '5' } });
        }
        throw new ApiError(401, 'auth-failed', error instanceof ApiError ? error.message : 'The bearer token is not accepted.');
      }
      if (requestHasBody(ctx.req)) await deps.refuseBeforeBody(ctx, verified.keypair);
      await readSignedBody(ctx, deps.bodyLimit, ['sha256']);
      ctx.state.auth = {
        keypair: verified.keypair,
        // No signature: the fields routes read are the access key; the rest says "bearer".
        auth: { scheme: 'Bearer', signMethod: 'oidc', algorithm: 'sha256', accessKey: verified.keypair.accessKey, signature: '' } as unknown as AuthorizationParams,
        apiVersion: ctx.get('x-backendai-version') || deps.apiVersion,
        // The token covers the whole request as much as TLS does: the body is as trusted as the token.
        bodySigned: true,
      };
      return principalOf(verified.keypair, verified.subject);
    },
  };
}

