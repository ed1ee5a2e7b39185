/**
 * The one error type of kernelgate. Anything thrown inside the gateway that is
 * meant for the client is an ApiError; the problem middleware turns it into an
 * RFC 9457 document. Anything else becomes a generic 500 that leaks nothing.
 */
export type ProblemSlug =
  | 'invalid-auth-params'
  | 'generic-bad-request'
  | 'auth-failed'
  | 'generic-forbidden'
  | 'invalid-api-params'
  | 'url-not-found'
  | 'session-not-found'
  | 'model-not-found'
  | 'method-not-allowed'
  | 'request-too-large'
  | 'request-header-fields-too-large'
  | 'invalid-image'
  | 'unsupported-media-type'
  | 'rate-limit-exceeded'
  | 'quota-exceeded'
  | 'idempotency-conflict'
  | 'idempotency-mismatch'
  | 'service-unavailable'
  | 'gateway-timeout'
  | 'internal-server-error';

const TITLES: Record<ProblemSlug, string> = {
  'invalid-auth-params': 'Missing or invalid authorization parameters.',
  'generic-bad-request': 'Bad request.',
  'auth-failed': 'Credential/signature mismatch.',
  'generic-forbidden': 'Forbidden operation.',
  'invalid-api-params': 'Missing or invalid API parameters.',
  'url-not-found': 'Unknown URL path.',
  'session-not-found': 'No such session.',
  'model-not-found': 'No such model.',
  'method-not-allowed': 'Method not allowed.',
  'request-too-large': 'Request too large.',
  'request-header-fields-too-large': 'Request header fields too large.',
  'invalid-image': 'Invalid image.',
  'unsupported-media-type': 'Unsupported media type.',
  'rate-limit-exceeded': 'Rate limit exceeded.',
  'quota-exceeded': 'Quota exceeded.',
  'idempotency-conflict': 'A request with this idempotency key is still being processed.',
  'idempotency-mismatch': 'The idempotency key was already used for a different request.',
  'service-unavailable': 'Service unavailable.',
  'gateway-timeout': 'The backend did not answer in time.',
  'internal-server-error': 'Something went wrong during processing the request.',
};

export class ApiError extends Error {
  readonly status: number;
  readonly slug: ProblemSlug;
  readonly title: string;
  readonly headers: Record<string, string>;
  /** Extra members placed in the problem document (never secrets). */
  readonly extra: Record<string, unknown>;
  /** Operator-only detail: logged at info with the request id, never sent to the client (never secrets). */
  readonly logFields?: { msg: string } & Record<string, unknown>;

  constructor(
    status: number,
    slug: ProblemSlug,
    detail: string,
    opts: { headers?: Record<string, string>; extra?: Record<string, unknown>; log?: { msg: string } & Record<string, unknown> } = {},
  ) {
    super(detail);
    this.name = 'ApiError';
    this.status = status;
    this.slug = slug;
    this.title = TITLES[slug];
    this.headers = opts.headers ?? {};
    this.extra = opts.extra ?? {};
    if (opts.log) this.logFields = opts.log;
  }
}

export const invalidAuth = (detail: string) => new ApiError(400, 'invalid-auth-params', detail);
export const authFailed = (detail: string) => new ApiError(401, 'auth-failed', detail);
export const unavailable = (detail: string, retryAfterSeconds: number) =>
  new ApiError(503, 'service-unavailable', detail, { headers: { 'Retry-After': String(retryAfterSeconds) } });
