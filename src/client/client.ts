import { signRequest, type SignRequestInput } from '../signing/sign-request.js';
import type { HashAlgorithm } from '../signing/algorithms.js';
import { nextLink } from './link.js';

/** Pages followed at most by pages()/all(): a collection of 1000 pages of 1000 is far past any real one. */
const MAX_PAGES = 1000;

export interface ClientOptions {
  /** Base URL of the gateway, e.g. `http://127.0.0.1:8080`. */
  endpoint: string;
  accessKey: string;
  secretKey: string;
  apiVersion?: string;
  algorithm?: HashAlgorithm;
  bodyHashMode?: 'strict' | 'backendai';
  fetch?: typeof fetch;
}

export interface RequestOptions {
  /** Query parameters, appended percent-encoded (the signature covers them as sent). */
  query?: Record<string, string | number | boolean | undefined>;
  /** A JSON body (sets Content-Type: application/json). */
  json?: unknown;
  /** Raw bytes or text; give `contentType` too. */
  body?: Uint8Array | string;
  contentType?: string;
  headers?: Record<string, string>;
  signal?: AbortSignal;
}

/** Builds `path?query` the way it will go on the wire: what is signed is what is sent. */
export function requestTarget(path: string, query?: RequestOptions['query']): string {
  if (!query) return path;
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) if (v !== undefined) params.append(k, String(v));
  const qs = params.toString().replace(/\+/g, '%20');
  return qs ? `${path}${path.includes('?') ? '&' : '?'}${qs}` : path;
}

/** A fetch wrapper that signs every request with the Backend.AI scheme. */
export class KernelgateClient {
  private readonly base: URL;
  private readonly doFetch: typeof fetch;

  constructor(private readonly opts: ClientOptions) {
    this.base = new URL(opts.endpoint);
    this.doFetch = opts.fetch ?? fetch;
  }

  /** The signed headers for a request, without sending it; `target` is the path and query as sent (base path included). */
  sign(method: string, target: string, body?: Uint8Array | string, contentType?: string): Record<string, string> {
    const input: SignRequestInput = {
      method,
      target,
      host: this.base.host,
      accessKey: this.opts.accessKey,
      secretKey: this.opts.secretKey,
      body,
      contentType,
      apiVersion: this.opts.apiVersion,
      algorithm: this.opts.algorithm,
      bodyHashMode: this.opts.bodyHashMode,
    };
    return signRequest(input).headers;
  }

  async request(method: string, path: string, options: RequestOptions = {}): Promise<Response> {
    const target = requestTarget(path, options.query);
    let body = options.body;
    let contentType = options.contentType;
    if (options.json !== undefined) {
      body = JSON.stringify(options.json);
      contentType ??= 'application/json';
    }
    // An endpoint with a path (`http://host/kernelgate`) prefixes every target: sign the target as sent.
    return this.send(method, this.base.pathname.replace(/\/$/, '') + target, body, contentType, options);
  }

  /** Signs and sends `sent` (path and query on the wire, base path included) as it is. */
  private send(method: string, sent: string, body: Uint8Array | string | undefined, contentType: string | undefined, options: RequestOptions): Promise<Response> {
    const headers = { ...options.headers, ...this.sign(method.toUpperCase(), sent, body, contentType) };
    return this.doFetch(new URL(sent, this.base.origin), {
      method: method.toUpperCase(),
      headers,
      body: body === undefined || body.length === 0 ? undefined : (body as BodyInit),
      signal: options.signal,
    });
  }

  /**
   * GET `path`, then each page its `Link: <...>; rel="next"` names, in turn: every page's response
   * (check `ok` on each). Links resolve against the page's own URL (the gateway sends relative ones);
   * one that leaves the endpoint's origin ends the walk with an error, so no signed request goes elsewhere.
   */
  async *pages(path: string, options: Omit<RequestOptions, 'json' | 'body' | 'contentType'> = {}): AsyncGenerator<Response> {
    let response = await this.request('GET', path, options);
    for (let n = 1; ; n++) {
      yield response;
      const link = nextLink(response.headers.get('link'));
      if (link === undefined || !response.ok) return;
      if (n >= MAX_PAGES) throw new Error(`more than ${MAX_PAGES} pages at ${path}`);
      const next = new URL(link, response.url || new URL(this.base.pathname.replace(/\/$/, '') + requestTarget(path, options.query), this.base.origin));
      if (next.origin !== this.base.origin) throw new Error(`rel="next" leaves ${this.base.origin}: ${next.origin}`);
      response = await this.send('GET', next.pathname + next.search, undefined, undefined, options);
    }
  }

  /** Every item of a paged collection: `member` (e.g. "sessions") of each page, concatenated; throws on an error page. */
  async all<T = unknown>(path: string, member: string, options: Omit<RequestOptions, 'json' | 'body' | 'contentType'> = {}): Promise<T[]> {
    const items: T[] = [];
    for await (const response of this.pages(path, options)) {
      const page = await this.parse<Record<string, unknown>>(response);
      const part = page?.[member];
      if (!Array.isArray(part)) throw new Error(`no "${member}" array in the page of ${path}`);
      items.push(...(part as T[]));
    }
    return items;
  }

  /** request() then JSON, throwing the problem document's detail on errors. */
  async json<T = unknown>(method: string, path: string, options: RequestOptions = {}): Promise<T> {
    return this.parse<T>(await this.request(method, path, options));
  }

  private async parse<T>(response: Response): Promise<T> {
    const text = await response.text();
    const value = text ? JSON.parse(text) : undefined;
    if (!response.ok) {
      const error = new Error(value?.detail ?? `HTTP ${response.status}`) as Error & { status: number; problem: unknown };
      error.status = response.status;
      error.problem = value;
      throw error;
    }
    return value as T;
  }
}
