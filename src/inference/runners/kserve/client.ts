/**
 * One HTTP exchange with one Open Inference Protocol backend, over a keep-alive agent, with the facts the
 * retry rule needs: whether the request could have reached the server at all. A job may be retried on
 * another backend only when it was never received (connection refused, or the connection failed before
 * the whole request was written), so that it runs at most once.
 */
import http from 'node:http';
import https from 'node:https';

export type TransportFailure =
  /** Nothing could have run: refused, or the connection broke before the request was fully written. */
  | 'unsent'
  /** The backend had the whole request but did not answer within the deadline. */
  | 'timeout'
  /** The connection broke after the request was written: the job may have run. */
  | 'broken'
  /** The answer was larger than allowed. */
  | 'too-large';

export class TransportError extends Error {
  constructor(
    readonly kind: TransportFailure,
    message: string,
  ) {
    super(message);
    this.name = 'TransportError';
  }
}

export interface Exchange {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

export interface SendOptions {
  method: 'GET' | 'POST';
  path: string;
  headers?: Record<string, string | number>;
  chunks?: Uint8Array[];
  /** Whole exchange, ms. */
  timeoutMs: number;
  /** Until the connection is open, ms. */
  connectTimeoutMs: number;
  maxResponseBytes: number;
}

/** One backend's origin, token and connection pool. */
export class BackendClient {
  readonly url: URL;
  readonly #agent: http.Agent;
  readonly #token: string;

  constructor(base: string, token: string) {
    this.url = new URL(base);
    if (this.url.protocol !== 'http:' && this.url.protocol !== 'https:') throw new Error(`kserve_urls: ${base} is not an http(s) URL`);
    this.#token = token;
    const Agent = this.url.protocol === 'https:' ? https.Agent : http.Agent;
    this.#agent = // Idle sockets close after 4 s, before the usual 5 s server keep-alive timeouts (uvicorn, Node): a
    // request written onto a socket the server is closing would look "broken" and could not be retried.
    this.#agent = new Agent({ keepAlive: true, maxSockets: 64, keepAliveMsecs: 1000, timeout: 4000 });
  }

  /** The backend as metrics and logs name it: its origin and path, never credentials. */
  get label(): string {
    return `${this.url.protocol}//${this.url.host}${this.url.pathname.replace(/\/$/, '')}`;
  }

  send(opts: SendOptions): Promise<Exchange> {
    return new Promise((resolve, reject) => {
      const headers: Record<string, string | number> = { accept: 'application/json, application/octet-stream', ...opts.headers };
      if (this.#token) headers.authorization = `Bearer ${this.#token}`;
      const length = (opts.chunks ?? []).reduce((n, c) => n + c.length, 0);
      if (opts.method === 'POST') headers['content-length'] = length;
      const base = this.url.pathname.replace(/\/$/, '');
      const mod = this.url.protocol === 'https:' ? https : http;
      let written = false;
      let settled = false;
      const fail = (err: TransportError) => {
        if (settled) return;
        settled = true;
        clearTimeout(whole);
        clearTimeout(connect);
        req.destroy();
        reject(err);
      };
      const req = mod.request(
        { protocol: this.url.protocol, hostname: this.url.hostname, port: this.url.port, method: opts.method, path: base + opts.path, headers, agent: this.#agent },
        (res) => {
          const parts: Buffer[] = [];
          let got = 0;
          const declared = Number(res.headers['content-length']);
          if (declared > opts.maxResponseBytes) return fail(new TransportError('too-large', `answer of ${declared} bytes exceeds ${opts.maxResponseBytes}`));
          res.on('data', (chunk: Buffer) => {
            got += chunk.length;
            if (got > opts.maxResponseBytes) return fail(new TransportError('too-large', `answer exceeds ${opts.maxResponseBytes} bytes`));
            parts.push(chunk);
          });
          res.on('end', () => {
            if (settled) return;
            settled = true;
            clearTimeout(whole);
            resolve({ status: res.statusCode ?? 0, headers: res.headers, body: parts.length === 1 ? parts[0]! : Buffer.concat(parts) });
          });
          res.on('error', (e) => fail(new TransportError('broken', `answer broken: ${e.message}`)));
          res.on('aborted', () => fail(new TransportError('broken', 'answer aborted')));
        },
      );
      // 'finish': every byte of the request was handed to the operating system. Before it, a refused or
      // reset connection means the backend never had the whole request, so it cannot have run the job.
      req.on('finish', () => (written = true));
      req.on('error', (e: NodeJS.ErrnoException) => {
        const unsent = e.code === 'ECONNREFUSED' || (!written && ['ECONNRESET', 'EPIPE', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN'].includes(e.code ?? ''));
        fail(new TransportError(unsent ? 'unsent' : 'broken', `${e.code ?? 'error'}: ${e.message}`));
      });
      const connect = setTimeout(() => fail(new TransportError('unsent', `no connection within ${opts.connectTimeoutMs} ms`)), opts.connectTimeoutMs);
      req.on('socket', (s) => {
        if (!s.connecting) clearTimeout(connect);
        else s.once('connect', () => clearTimeout(connect));
      });
      const whole = setTimeout(() => fail(new TransportError(written ? 'timeout' : 'unsent', `no answer within ${opts.timeoutMs} ms`)), opts.timeoutMs);
      for (const c of opts.chunks ?? []) req.write(c);
      req.end();
    });
  }

  /**
   * Closes the idle pooled connections: after the backend failed they may be stale (its process died), and
   * a job written onto one could not tell "never received" from "lost mid-run"; fresh connections can.
   */
  dropIdle(): void {
    for (const list of Object.values(this.#agent.freeSockets)) for (const socket of list ?? []) socket.destroy();
  }

  close(): void {
    this.#agent.destroy();
  }
}
