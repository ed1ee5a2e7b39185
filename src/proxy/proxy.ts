import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readRawBody } from '../http/raw-body.js';
import { ApiError } from '../problems/api-error.js';
import { problemDocument } from '../problems/middleware.js';
import { signRequest } from '../signing/sign-request.js';
import { rateLimitHeaders } from '../ratelimit/charge.js';
import { MemoryRateLimitStore } from '../ratelimit/memory-store.js';

export interface ProxyOptions {
  /** The gateway, e.g. `http://127.0.0.1:8080`. */
  upstream: string;
  accessKey: string;
  secretKey: string;
  host?: string;
  port?: number;
  /** Path prefixes the public may reach through the proxy (default: sessions and auth/test). */
  allow?: string[];
  bodyLimit?: number;
  timeoutMs?: number;
  problemBaseUri?: string;
  /**
   * Requests per client address per window before the proxy itself answers 429
   * (default 600 per 60 s): every visitor spends the proxy's one keypair at the
   * gateway, so one visitor must not be able to spend it for all.
   */
  clientLimit?: number;
  clientWindowSeconds?: number;
}

/** Request headers passed on; everything else (cookies, the client's own Authorization) stays here. */
const FORWARDED_REQUEST_HEADERS = ['content-type', 'accept', 'idempotency-key', 'x-backendai-client-token'];
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'content-length', 'content-encoding']);

/**
 * The server-side signing proxy: public front-ends call it without
 * credentials and it signs each request with a keypair that never leaves the
 * server. It forwards only allowed paths, and the gateway still rate-limits
 * and scopes everything to that keypair.
 */
export function createSigningProxy(opts: ProxyOptions): { server: Server; listen(): Promise<AddressInfo>; close(): Promise<void> } {
  const upstream = new URL(opts.upstream);
  const allow = opts.allow ?? ['/session', '/auth/test', '/models'];
  const bodyLimit = opts.bodyLimit ?? 10 * 1024 * 1024;
  const base = opts.problemBaseUri ?? 'https://api.backend.ai/probs/';

  const limiter = new MemoryRateLimitStore();
  const clientLimit = opts.clientLimit ?? 600;
  const clientWindow = opts.clientWindowSeconds ?? 60;

  const fail = (res: ServerResponse, error: ApiError) => {
    const body = JSON.stringify(problemDocument(error, base));
    res.writeHead(error.status, { 'Content-Type': 'application/problem+json', ...error.headers });
    res.end(body);
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const decision = await limiter.consume(`ip:${req.socket.remoteAddress ?? ''}`, clientLimit, clientWindow);
    if (!decision.allowed) {
      throw new ApiError(429, 'rate-limit-exceeded', `More than ${clientLimit} requests in ${clientWindow} s from this address.`, {
        headers: rateLimitHeaders(decision, 'proxy-client'),
      });
    }
    const target = req.url ?? '/';
    const path = target.split('?')[0];
    if (!allow.some((prefix) => path === prefix || path.startsWith(`${prefix}/`)) || path.includes('/../')) {
      throw new ApiError(403, 'generic-forbidden', 'This path is not available through the proxy.');
    }
    const body = await readRawBody(req, bodyLimit);
    const contentType = req.headers['content-type'];
    const upstreamTarget = upstream.pathname.replace(/\/$/, '') + target;
    const signed = signRequest({
      method: req.method ?? 'GET',
      target: upstreamTarget,
      host: upstream.host,
      accessKey: opts.accessKey,
      secretKey: opts.secretKey,
      body,
      contentType,
    });
    const headers: Record<string, string> = { ...signed.headers };
    for (const name of FORWARDED_REQUEST_HEADERS) {
      const v = req.headers[name];
      if (typeof v === 'string' && name !== 'content-type') headers[name] = v;
    }
    let answer: Response;
    try {
      answer = await fetch(new URL(upstreamTarget, upstream.origin), {
        method: req.method,
        headers,
        body: body.length > 0 ? (body as unknown as BodyInit) : undefined,
        signal: AbortSignal.timeout(opts.timeoutMs ?? 60_000),
      });
    } catch {
      throw new ApiError(503, 'service-unavailable', 'The gateway did not answer.', { headers: { 'Retry-After': '1' } });
    }
    const out: Record<string, string> = {};
    answer.headers.forEach((v, k) => {
      if (!HOP_BY_HOP.has(k)) out[k] = v;
    });
    const bytes = Buffer.from(await answer.arrayBuffer());
    res.writeHead(answer.status, out);
    res.end(bytes);
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      if (res.headersSent) return res.destroy();
      fail(res, error instanceof ApiError ? error : new ApiError(500, 'internal-server-error', 'The proxy failed.'));
    });
  });
  return {
    server,
    listen: () =>
      new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(opts.port ?? 8081, opts.host ?? '127.0.0.1', () => resolve(server.address() as AddressInfo));
      }),
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
