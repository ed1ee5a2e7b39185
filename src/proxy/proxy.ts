import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { unescape as unescapeQuery } from 'node:querystring';
import { addressBucket, resolveClient, TrustedProxies } from '../http/client-view.js';
import { readRawBody } from '../http/raw-body.js';
import { ApiError } from '../problems/api-error.js';
import { problemDocument } from '../problems/middleware.js';
import { canonicalContentType } from '../signing/canonical.js';
import { signRequest } from '../signing/sign-request.js';
import { rateLimitHeaders } from '../ratelimit/charge.js';
import { MemoryRateLimitStore } from '../ratelimit/memory-store.js';
import { formKeys } from '../auth/authenticators/apikey.js';
import { stripFormCredentials } from './form-credentials.js';
import type { VisitorCredentials } from './visitors.js';

export interface ProxyOptions {
  /** The gateway, e.g. `http://127.0.0.1:8080`. */
  upstream: string;
  accessKey: string;
  secretKey: string;
  host?: string;
  port?: number;
  /** Path prefixes the public may reach through the proxy (default: /session and /auth/test; never /models unless named). */
  allow?: string[];
  bodyLimit?: number;
  timeoutMs?: number;
  problemBaseUri?: string;
  /**
   * Requests per client address per window before the proxy itself answers 429
   * (default 600 per 60 s): every visitor spends the proxy's one keypair at the
   * gateway, so one visitor must not be able to spend it for all. IPv6
   * visitors are counted per /64.
   */
  clientLimit?: number;
  clientWindowSeconds?: number;
  /** Peers (addresses or CIDR) in front of the proxy whose X-Forwarded-For it believes (default none). */
  trustedProxies?: string[];
  /**
   * Sign with an admin or superadmin keypair (default false: refused, since every
   * anonymous visitor would hold its powers). The role is asked of the gateway
   * (`GET /auth/role`) before the proxy listens, and before the first forward
   * if the gateway did not answer then.
   */
  allowAdmin?: boolean;
  /** Pass `owner_access_key` on (default false: removed from query strings and JSON / form bodies). */
  allowOwner?: boolean;
  /**
   * Per-visitor identity (`--auth apikey,oidc`, src/proxy/visitors.ts): each visitor's own credentials
   * (x-api-key, a DeepStack api_key form field, a bearer token) name a keypair, and the request is signed
   * upstream with that keypair (its secret stays on the server), so visitors get their own quotas and
   * sessions. Returns the keypair, or throws the 401. accessKey/secretKey are then unused; without it,
   * the anonymous mode signs everything with them.
   */
  identify?: (visitor: VisitorCredentials) => Promise<{ accessKey: string; secretKey: string; role: string }>;
}

/** Request headers passed on; everything else (cookies, the client's own Authorization) stays here. */
const FORWARDED_REQUEST_HEADERS = ['content-type', 'accept', 'idempotency-key', 'x-backendai-client-token'];

/** Upstream response headers passed back to the visitor; everything else stays here. */
const PASSED_RESPONSE_HEADERS = new Set([
  'content-type',
  'content-language',
  'content-disposition',
  'cache-control',
  'expires',
  'last-modified',
  'etag',
  'vary',
  'link',
  'location',
  'retry-after',
  'ratelimit',
  'ratelimit-policy',
  'idempotent-replayed',
  'set-cookie',
]);
const passedResponseHeader = (name: string) => PASSED_RESPONSE_HEADERS.has(name) || name.startsWith('x-ratelimit-');

const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);
const NO_BODY_METHODS = new Set(['GET', 'HEAD']);
const OWNER_PARAM = 'owner_access_key';

const forbidden = (detail = 'This path is not available through the proxy.') => new ApiError(403, 'generic-forbidden', detail);

/** Names listed in a Connection header: hop-by-hop for this connection only. */
function connectionTokens(value: string | string[] | null | undefined): Set<string> {
  const joined = Array.isArray(value) ? value.join(',') : (value ?? '');
  return new Set(joined.split(',').map((t) => t.trim().toLowerCase()).filter(Boolean));
}

/**
 * The request target as it will be forwarded, checked segment by segment on
 * its decoded form: dot segments (plain or encoded), encoded slashes or
 * backslashes, empty segments and anything that does not decode are refused,
 * so the path the allow-list saw is the path the gateway routes.
 */
export function checkTarget(rawTarget: string, allow: readonly string[]): { path: string; decodedPath: string; query: string } {
  if (!rawTarget.startsWith('/') || rawTarget.startsWith('//')) throw forbidden();
  if (rawTarget.includes('#')) throw new ApiError(400, 'generic-bad-request', 'A request target cannot hold a fragment.');
  const q = rawTarget.indexOf('?');
  const path = q === -1 ? rawTarget : rawTarget.slice(0, q);
  const query = q === -1 ? '' : rawTarget.slice(q + 1);
  if (path.includes('\\')) throw forbidden();
  const segments = path.split('/').slice(1);
  const decoded: string[] = [];
  segments.forEach((segment, i) => {
    let value: string;
    try {
      value = decodeURIComponent(segment);
    } catch {
      throw new ApiError(400, 'generic-bad-request', 'The request path is not valid percent-encoding.');
    }
    if (value === '.' || value === '..' || /[/\\\0]/.test(value)) throw forbidden();
    if (value === '' && i < segments.length - 1) throw forbidden();
    decoded.push(value);
  });
  const decodedPath = `/${decoded.join('/')}`;
  if (!allow.some((prefix) => decodedPath === prefix || decodedPath.startsWith(`${prefix.replace(/\/$/, '')}/`))) throw forbidden();
  return { path, decodedPath, query };
}

/** The query string without `owner_access_key`, however it is spelled (`owner%5Faccess%5Fkey`, `+`...). */
export function stripOwnerFromQuery(query: string): string {
  if (query === '') return '';
  return query
    .split('&')
    .filter((pair) => {
      const eq = pair.indexOf('=');
      const name = eq === -1 ? pair : pair.slice(0, eq);
      return unescapeQuery(name.replace(/\+/g, ' ')) !== OWNER_PARAM;
    })
    .join('&');
}

/** The body without a top-level `owner_access_key`, for the content types the gateway reads it from. */
export function stripOwnerFromBody(body: Buffer, contentType: string | undefined): Buffer {
  if (body.length === 0) return body;
  const type = canonicalContentType(contentType);
  if (type === 'application/json' || type.endsWith('+json')) {
    let value: unknown;
    try {
      value = JSON.parse(body.toString('utf8'));
    } catch {
      return body; // the gateway answers 400 to it
    }
    if (value === null || typeof value !== 'object' || Array.isArray(value) || !Object.hasOwn(value, OWNER_PARAM)) return body;
    delete (value as Record<string, unknown>)[OWNER_PARAM];
    return Buffer.from(JSON.stringify(value));
  }
  if (type === 'application/x-www-form-urlencoded') {
    const params = new URLSearchParams(body.toString('utf8'));
    if (!params.has(OWNER_PARAM)) return body;
    params.delete(OWNER_PARAM);
    return Buffer.from(params.toString());
  }
  return body;
}

/**
 * The server-side signing proxy: public front-ends call it without
 * credentials and it signs each request with a keypair that never leaves the
 * server. It forwards only allowed paths, and the gateway still rate-limits
 * and scopes everything to that keypair.
 */
export function createSigningProxy(opts: ProxyOptions): { server: Server; listen(): Promise<AddressInfo>; close(): Promise<void> } {
  const upstream = new URL(opts.upstream);
  const basePath = upstream.pathname.replace(/\/$/, '');
  const allow = opts.allow ?? ['/session', '/auth/test'];
  const bodyLimit = opts.bodyLimit ?? 10 * 1024 * 1024;
  const base = opts.problemBaseUri ?? 'https://api.backend.ai/probs/';
  const trusted = new TrustedProxies(opts.trustedProxies ?? []);

  const limiter = new MemoryRateLimitStore();
  const clientLimit = opts.clientLimit ?? 600;
  const clientWindow = opts.clientWindowSeconds ?? 60;

  const sign = (method: string, url: URL, body?: Buffer, contentType?: string, as: { accessKey: string; secretKey: string } = opts) =>
    signRequest({ method, target: url.pathname + url.search, host: upstream.host, accessKey: as.accessKey, secretKey: as.secretKey, body, contentType }).headers;

  /** The keypair's role as the gateway sees it; undefined when the gateway did not answer. */
  const askRole = async (): Promise<string | undefined> => {
    const url = new URL(`${basePath}/auth/role`, upstream.origin);
    try {
      const res = await fetch(url, { headers: sign('GET', url), signal: AbortSignal.timeout(5000) });
      if (!res.ok) return undefined;
      return ((await res.json()) as { role?: string }).role;
    } catch {
      return undefined;
    }
  };
  const adminRefusal = (role: string) =>
    `kernelgate proxy refuses to sign with a${role === 'admin' ? 'n' : ''} ${role} keypair (${opts.accessKey}): every visitor would hold its powers. Use a user keypair, or pass --allow-admin.`;
  let roleChecked = opts.allowAdmin === true;
  let refusedRole: string | undefined;
  let roleCheck: Promise<void> | undefined;
  const misconfigured = () => new ApiError(503, 'service-unavailable', 'The proxy is not configured to serve requests.', { headers: { 'Retry-After': '60' } });
  /** Throws unless the keypair is known to be allowed; asks the gateway at most once at a time. */
  const ensureRole = async (): Promise<void> => {
    if (roleChecked) return;
    if (refusedRole !== undefined) throw misconfigured();
    roleCheck ??= askRole().then((role) => {
      roleCheck = undefined;
      if (role === undefined) throw new ApiError(503, 'service-unavailable', 'The gateway did not answer.', { headers: { 'Retry-After': '1' } });
      if (role !== 'user') {
        refusedRole = role;
        process.stderr.write(`${JSON.stringify({ level: 50, msg: adminRefusal(role) })}\n`);
        throw misconfigured();
      }
      roleChecked = true;
    });
    return roleCheck;
  };

  const fail = (res: ServerResponse, error: ApiError) => {
    const body = JSON.stringify(problemDocument(error, base));
    res.writeHead(error.status, { 'Content-Type': 'application/problem+json', ...error.headers });
    res.end(body);
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const client = resolveClient(req.socket.remoteAddress, req.headers, trusted);
    const decision = await limiter.consume(`ip:${addressBucket(client.address)}`, clientLimit, clientWindow);
    if (!decision.allowed) {
      throw new ApiError(429, 'rate-limit-exceeded', `More than ${clientLimit} requests in ${clientWindow} s from this address.`, {
        headers: rateLimitHeaders(decision, 'proxy-client'),
      });
    }
    const method = (req.method ?? 'GET').toUpperCase();
    if (!METHODS.has(method)) {
      throw new ApiError(405, 'method-not-allowed', `${method} is not available through the proxy.`, { headers: { Allow: [...METHODS].join(', ') } });
    }
    const hasBody = (req.headers['content-length'] !== undefined && req.headers['content-length'] !== '0') || req.headers['transfer-encoding'] !== undefined;
    if (hasBody && NO_BODY_METHODS.has(method)) throw new ApiError(400, 'generic-bad-request', `A ${method} request cannot have a body.`);
    const checked = checkTarget(req.url ?? '/', allow);
    const query = opts.allowOwner ? checked.query : stripOwnerFromQuery(checked.query);
    const url = new URL(`${basePath}${checked.path}${query ? `?${query}` : ''}`, upstream.origin);
    // What fetch sends is url.pathname: it must still be the path that was checked.
    if (url.origin !== upstream.origin || url.pathname !== `${basePath}${checked.path}`) throw forbidden();
    const contentType = req.headers['content-type'];
    let read: Buffer | undefined;
    const readBody = async () => (read ??= await readRawBody(req, bodyLimit));
    const visitor = await opts.identify?.({
      header: (name) => {
        const v = req.headers[name];
        return typeof v === 'string' ? v : undefined;
      },
      formFields: async () => formKeys(await readBody(), contentType ?? ''),
    });
    if (visitor === undefined) await ensureRole();
    else if (visitor.role !== 'user' && !opts.allowAdmin) throw new ApiError(403, 'generic-forbidden', 'The proxy does not act for admin keypairs.');
    let body = await readBody();
    if (!opts.allowOwner) body = stripOwnerFromBody(body, contentType);
    // A visitor's credential never travels upstream: the signature (of the visitor's keypair) replaces it.
    body = stripFormCredentials(body, contentType);
    const hopByHop = connectionTokens(req.headers.connection);
    const headers: Record<string, string> = { ...sign(method, url, body, contentType, visitor) };
    for (const name of FORWARDED_REQUEST_HEADERS) {
      const v = req.headers[name];
      if (typeof v === 'string' && name !== 'content-type' && !hopByHop.has(name)) headers[name] = v;
    }
    let answer: Response;
    try {
      answer = await fetch(url, {
        method,
        headers,
        body: body.length > 0 ? (body as unknown as BodyInit) : undefined,
        redirect: 'manual',
        signal: AbortSignal.timeout(opts.timeoutMs ?? 60_000),
      });
    } catch (error) {
      if ((error as Error).name === 'TimeoutError') throw new ApiError(504, 'gateway-timeout', 'The gateway did not answer in time.');
      throw new ApiError(503, 'service-unavailable', 'The gateway did not answer.', { headers: { 'Retry-After': '1' } });
    }
    const bytes = Buffer.from(await answer.arrayBuffer());
    const dropped = connectionTokens(answer.headers.get('connection'));
    const out: Record<string, string | string[]> = {};
    answer.headers.forEach((v, k) => {
      if (k !== 'set-cookie' && passedResponseHeader(k) && !dropped.has(k)) out[k] = v;
    });
    const cookies = answer.headers.getSetCookie();
    if (cookies.length > 0 && !dropped.has('set-cookie')) out['set-cookie'] = cookies;
    out['content-length'] = method === 'HEAD' ? (answer.headers.get('content-length') ?? '0') : String(bytes.length);
    res.writeHead(answer.status, out);
    res.end(bytes);
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      if (res.headersSent) return res.destroy();
      const apiError = error instanceof ApiError ? error : new ApiError(500, 'internal-server-error', 'The proxy failed.');
      // Whatever we answer, the rest of an unread body is not read: close the connection after the answer.
      if (!req.complete) res.setHeader('Connection', 'close');
      fail(res, apiError);
      if (!req.complete) req.resume();
    });
  });
  return {
    server,
    listen: async () => {
      if (!opts.allowAdmin && opts.identify === undefined) {
        const role = await askRole();
        if (role !== undefined && role !== 'user') throw new Error(adminRefusal(role));
        if (role === 'user') roleChecked = true;
      }
      return new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(opts.port ?? 8081, opts.host ?? '127.0.0.1', () => resolve(server.address() as AddressInfo));
      });
    },
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
