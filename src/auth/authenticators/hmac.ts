import { ApiError } from '../../problems/api-error.js';
import type { GatewayContext } from '../../http/context.js';
import { requestHasBody } from '../../http/raw-body.js';
import { readSignedBody } from '../../http/read-body.js';
import { isUsable, type Keypair } from '../../keypairs/keypair.js';
import { keypairPayer, type PayerLimits } from '../../ratelimit/payer.js';
import type { Authenticator } from '../authenticate.js';
import type { KeypairPrincipal } from '../principal.js';
import { checkApiVersion, checkHeaders, verifyRequest, type VerifyContext, type VerifyPolicy } from '../verify.js';

export interface HmacDeps {
  policy: VerifyPolicy;
  verifyContext(): VerifyContext;
  bodyLimit: number;
  limits: PayerLimits;
  /** Refuses (429) a body from a claimed keypair or address already over its limit; spends nothing. */
  refuseBeforeBody(ctx: GatewayContext, claimed: Keypair | undefined): Promise<void>;
}

const SCHEME = /^(?:BackendAI|Sorna) /;

/**
 * Backend.AI's HMAC signature (`Authorization: BackendAI signMethod=..., credential=<key>:<sig>`):
 * check what the headers alone can tell (version, credentials present and well-formed, date),
 * refuse a body from a client already over its limit, then read the body once (the signature covers
 * its exact bytes) and verify. Whatever is refused before its body is read is answered with
 * `Connection: close` (the request's outer stage), so the unread body is not drained.
 */
export function hmacAuthenticator(deps: HmacDeps): Authenticator {
  // One principal per keypair object: a reloaded keypair file is a new object, so its new limit is seen.
  const principals = new WeakMap<Keypair, KeypairPrincipal>();
  const principalOf = (keypair: Keypair): KeypairPrincipal => {
    let p = principals.get(keypair);
    if (p === undefined) {
      p = { keypair, scheme: 'backendai', credentialId: keypair.accessKey, payer: keypairPayer(keypair, deps.limits) };
      principals.set(keypair, p);
    }
    return p;
  };

  return {
    scheme: 'backendai',
    claims: (ctx) => SCHEME.test(ctx.get('authorization')),
    async authenticate(ctx) {
      const headers = { header: (name: string) => headerValue(ctx, name) };
      if (ctx.get('authorization') === '') {
        // Cheapest refusal: nothing to verify, no body worth reading; an unsupported version is still
        // answered first (README "Verification order"). Neither is an attempt worth logging.
        checkApiVersion(headers, deps.policy);
        throw new ApiError(401, 'auth-failed', 'No credentials were given.');
      }
      const verifyContext = deps.verifyContext();
      const checked = checkHeaders(headers, deps.policy, verifyContext);
      // Only a body is worth guarding: a bodiless request costs one HMAC, and the hot GET path stays short.
      // Unknown keys are not refused here: the answer (and its timing) must not tell which keys exist;
      // their failures are charged to the address, which this check then refuses once over its limit.
      if (requestHasBody(ctx.req)) {
        const claimed = verifyContext.lookup(checked.auth.accessKey);
        await deps.refuseBeforeBody(ctx, claimed !== undefined && isUsable(claimed, Date.now()) ? claimed : undefined);
      }
      // A spooled upload is hashed while it streams: with the signature's algorithm, and sha256 for idempotency.
      const body = await readSignedBody(ctx, deps.bodyLimit, [checked.auth.algorithm, 'sha256']);
      const verified = verifyRequest(
        { method: ctx.method, target: ctx.originalUrl, header: headers.header, host: ctx.state.client.host, body },
        deps.policy,
        verifyContext,
        checked,
      );
      ctx.state.auth = verified;
      return principalOf(verified.keypair);
    },
  };
}

function headerValue(ctx: GatewayContext, name: string): string | undefined {
  const value = ctx.req.headers[name];
  return Array.isArray(value) ? value.join(', ') : value;
}
