/**
 * `kernelgate worker`: every built-in and uploaded model over the Open Inference Protocol (KServe v2 REST)
 * with Triton's binary tensor extension, run by the local ONNX Runtime runners, for gateways whose
 * `[inference] backend = "kserve"`.
 *
 * Plain node:http rather than Koa: bodies are bytes whose JSON header length comes from a header, and the
 * answer is written as chunks straight from the output tensor. Routes:
 *   GET /v2/health/live, /v2/health/ready        public (Kubernetes probes carry no token)
 *   GET /v2, /v2/models/{m}, /v2/models/{m}/ready  bearer token when one is configured
 *   POST /v2/models/{m}/infer                      bearer token when one is configured
 *   GET /metrics                                   bearer token when one is configured
 * Errors are the protocol's `{"error": "..."}` with a 4xx/5xx status; a full queue is 503 + Retry-After.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Config } from '../config/config.js';
import { ApiError } from '../problems/api-error.js';
import {
  decodeInferRequest, encodeError, encodeInferResponse, fitsShape, parseHeaderLength, ProtocolError, type Encoded, type InferRequest, type Tensor,
} from '../inference/runners/kserve/protocol.js';
import type { RawTensor } from '../inference/runners/runner.js';
import { describe, WorkerModels, type DescribedRunner } from './models.js';
import { acceptedInput, datatypeOf, protocolOutput, rawFeed } from './tensors.js';
import { bearerMatches } from './token.js';

/** A failure answered to the client as `{"error": message}`. */
class WorkerError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

export interface WorkerOptions {
  config: Config;
  /** Required unless the worker listens on loopback (checked by the caller); "" = none. */
  token: string;
  log: Logger;
}

export interface Worker {
  server: http.Server;
  models: WorkerModels;
  registry: Registry;
  listen(): Promise<AddressInfo>;
  close(): Promise<void>;
}

const MODEL_ROUTE = /^\/v2\/models\/([^/]{1,300})(?:\/versions\/([^/]{1,64}))?(\/ready|\/infer)?$/;

export function createWorker(opts: WorkerOptions): Worker {
  const { config, token, log } = opts;
  const wcfg = config.worker;
  const models = new WorkerModels(config.inference, log);
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const requests = new Counter({ name: 'kernelgate_worker_requests_total', help: 'Protocol requests by route kind and status.', labelNames: ['route', 'status'], registers: [registry] });
  const inferSeconds = new Histogram({
    name: 'kernelgate_worker_inference_duration_seconds',
    help: 'Inference requests answered 200, from the end of the body to the answer, by model.',
    labelNames: ['model'],
    buckets: [0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10, 30],
    registers: [registry],
  });
  for (const [key, help] of [['running', 'Jobs running now'], ['queued', 'Jobs waiting'], ['rejected', 'Jobs refused (queue full)'], ['completed', 'Jobs finished']] as const) {
    new Gauge({
      name: `kernelgate_worker_inference_${key}`,
      help: `${help}, per model.`,
      labelNames: ['model'],
      registers: [registry],
      collect() {
        this.reset();
        for (const q of models.queues()) this.set({ model: q.model }, q[key]);
      },
    });
  }

  const send = (res: http.ServerResponse, status: number, body: Encoded | Uint8Array, headers: Record<string, string | number> = {}) => {
    if (res.headersSent || res.destroyed) return;
    const e: Encoded = body instanceof Uint8Array ? { chunks: [body], length: body.length, contentType: 'application/json' } : body;
    res.statusCode = status;
    res.setHeader('content-type', e.contentType);
    res.setHeader('content-length', e.length);
    if (e.headerLength !== undefined) res.setHeader('inference-header-content-length', e.headerLength);
    for (const [k, v] of Object.entries(headers)) res.setHeader(k, v);
    for (const c of e.chunks) res.write(c);
    res.end();
  };
  const json = (res: http.ServerResponse, status: number, value: unknown) => send(res, status, Buffer.from(JSON.stringify(value)));

  /** The body, within the limit: refused from Content-Length before reading, or once it grows past it. */
  const readBody = (req: http.IncomingMessage): Promise<Buffer> =>
    new Promise((resolve, reject) => {
      const limit = wcfg.max_body_bytes;
      const declared = req.headers['content-length'];
      if (declared !== undefined && Number(declared) > limit) return reject(new WorkerError(413, `the body is larger than ${limit} bytes (worker.max_body_bytes)`));
      const parts: Buffer[] = [];
      let got = 0;
      req.on('data', (c: Buffer) => {
        got += c.length;
        if (got > limit) {
          req.removeAllListeners('data');
          req.pause();
          reject(new WorkerError(413, `the body is larger than ${limit} bytes (worker.max_body_bytes)`));
          return;
        }
        parts.push(c);
      });
      req.on('end', () => resolve(parts.length === 1 ? parts[0]! : Buffer.concat(parts)));
      req.on('error', reject);
    });

  /**
   * Inputs of the request checked against the model: names, the datatype its metadata declares (sizes were
   * checked against shapes by the decoder), shapes; the outputs asked for.
   */
  const feedsFor = (model: string, r: DescribedRunner, ir: InferRequest) => {
    const feeds: Record<string, RawTensor> = {};
    for (const t of ir.inputs) {
      const i = r.inputNames.indexOf(t.name);
      if (i < 0) throw new WorkerError(400, `model ${model} has no input ${JSON.stringify(t.name)} (inputs: ${r.inputNames.join(', ')})`);
      const type = datatypeOf(r.inputTypes[i]);
      if (!acceptedInput(type)) throw new WorkerError(400, `input ${t.name} is ${type}; the worker takes numeric and BOOL inputs only`);
      if (t.datatype !== type) throw new WorkerError(400, `input ${t.name} must be ${type}, not ${t.datatype}`);
      const declared = (r.inputShapes[i] ?? []).map((d) => (typeof d === 'number' && d >= 0 ? d : -1));
      if (!fitsShape(t.shape, declared)) throw new WorkerError(400, `input ${t.name} has shape [${t.shape.join(', ')}]; the model takes [${declared.join(', ')}]`);
      if (feeds[t.name]) throw new WorkerError(400, `input ${t.name} is given twice`);
      feeds[t.name] = rawFeed(t.datatype, t.data, t.shape);
    }
    const missing = r.inputNames.filter((n) => !feeds[n]);
    if (missing.length > 0) throw new WorkerError(400, `missing input ${missing.join(', ')}`);
    // The protocol: no "outputs" asks for every output (BlazeFace's face kernel needs its four).
    const requested = ir.outputs && ir.outputs.length > 0 ? ir.outputs : r.outputNames.map((name) => ({ name, binary: undefined as boolean | undefined }));
    const seen = new Set<string>();
    for (const o of requested) {
      if (!r.outputNames.includes(o.name)) throw new WorkerError(400, `model ${model} has no output ${JSON.stringify(o.name)}`);
      if (seen.has(o.name)) throw new WorkerError(400, `output ${o.name} is asked for twice`);
      seen.add(o.name);
    }
    const outputs = requested.map((o) => ({ name: o.name, binary: o.binary ?? ir.binaryOutput ?? false }));
    return { feeds, outputs };
  };

  const infer = async (req: http.IncomingMessage, res: http.ServerResponse, name: string, signal: AbortSignal) => {
    const model = models.find(name);
    if (!model) throw new WorkerError(404, `unknown model ${JSON.stringify(name)}`);
    const body = await readBody(req);
    const started = performance.now();
    let ir: InferRequest;
    try {
      const hl = req.headers['inference-header-content-length'];
      ir = decodeInferRequest(body, parseHeaderLength(hl, body.length));
    } catch (error) {
      if (error instanceof ProtocolError) throw new WorkerError(400, error.message);
      throw error;
    }
    const runner = await loadRunner(name);
    const { feeds, outputs } = feedsFor(name, runner, ir);
    const address = req.socket.remoteAddress ?? '';
    // Only the outputs asked for are fetched: the recognizer's reduced ones without its [N, T, 6625] tensor.
    const wanted = outputs.map((o) => o.name);
    const results = await models.queue(name).run(
      async () => {
        const r = await loadRunner(name); // the process may have been replaced while the job waited
        return r.runRaw(feeds, { timeoutMs: config.inference.timeout_ms, outputs: wanted });
      },
      { owner: address, signal },
    );
    const tensors = outputs.map((o): Tensor => {
      const out = protocolOutput(results[o.name]!);
      // The model's fault, not the client's: an element type the protocol has no datatype for.
      if (!out) throw new WorkerError(500, `output ${o.name} is of type ${results[o.name]!.type}, which the protocol has no datatype for`);
      return { name: o.name, shape: results[o.name]!.dims, ...out };
    });
    const binaryOf = new Map(outputs.map((o) => [o.name, o.binary]));
    const encoded = encodeInferResponse(
      { model_name: name, model_version: '1', ...(ir.id !== undefined ? { id: ir.id } : {}), outputs: tensors },
      (name) => binaryOf.get(name) ?? false,
    );
    inferSeconds.labels(name).observe((performance.now() - started) / 1000);
    send(res, 200, encoded);
  };

  const loadRunner = async (name: string): Promise<DescribedRunner> => {
    const model = models.find(name);
    if (!model) throw new WorkerError(404, `unknown model ${JSON.stringify(name)}`);
    try {
      return await models.runner(model);
    } catch {
      throw new WorkerError(503, `model ${name} could not be loaded; the worker log has why`, { 'retry-after': '5' });
    }
  };

  const authorized = (req: http.IncomingMessage) => token === '' || bearerMatches(req.headers.authorization, token);

  const route = async (req: http.IncomingMessage, res: http.ServerResponse, signal: AbortSignal): Promise<string> => {
    const path = (req.url ?? '/').split('?')[0]!;
    const method = req.method ?? 'GET';
    if (path === '/v2/health/live' || path === '/v2/health/ready') {
      if (method !== 'GET') throw new WorkerError(405, 'use GET');
      if (path.endsWith('live')) json(res, 200, { live: true });
      else if (models.builtinsReady()) json(res, 200, { ready: true });
      else json(res, 503, { ready: false });
      return 'health';
    }
    if (!authorized(req)) {
      throw new WorkerError(401, 'a valid bearer token is required', { 'www-authenticate': 'Bearer' });
    }
    if (path === '/metrics' && method === 'GET') {
      const text = await registry.metrics();
      send(res, 200, Buffer.from(text), { 'content-type': registry.contentType });
      return 'metrics';
    }
    if (path === '/v2' && method === 'GET') {
      json(res, 200, { name: 'kernelgate-worker', version: '1', extensions: ['binary_tensor_data'] });
      return 'server';
    }
    const m = MODEL_ROUTE.exec(path);
    if (!m) throw new WorkerError(404, `no route ${path.slice(0, 100)}`);
    let name: string;
    try {
      name = decodeURIComponent(m[1]!);
    } catch {
      throw new WorkerError(400, 'the model name is not valid percent-encoding');
    }
    if (m[2] !== undefined && m[2] !== '1') throw new WorkerError(404, `model ${name} has only version 1`);
    const action = m[3];
    if (action === '/infer') {
      if (method !== 'POST') throw new WorkerError(405, 'use POST');
      await infer(req, res, name, signal);
      return 'infer';
    }
    if (method !== 'GET') throw new WorkerError(405, 'use GET');
    const runner = await loadRunner(name);
    if (action === '/ready') json(res, 200, { name, ready: true });
    else json(res, 200, describe(name, runner));
    return action === '/ready' ? 'model-ready' : 'metadata';
  };

  const server = http.createServer({ requestTimeout: config.inference.timeout_ms + 10_000, headersTimeout: 10_000, maxHeaderSize: 16 * 1024 }, (req, res) => {
    const controller = new AbortController();
    res.on('close', () => {
      if (!res.writableFinished) controller.abort();
    });
    route(req, res, controller.signal).then(
      (kind) => requests.labels(kind, String(res.statusCode)).inc(),
      (error: unknown) => {
        let status = 500;
        let message = 'internal error; the worker log has it';
        let headers: Record<string, string> = {};
        if (error instanceof WorkerError) ({ status, message, headers } = error);
        else if (error instanceof ApiError) {
          // From the work queue: 503 (full, with Retry-After) or 504 (deadline).
          status = error.status;
          message = error.message;
          headers = error.headers;
        } else log.error({ err: error, url: req.url?.slice(0, 200) }, 'worker: request failed');
        requests.labels('error', String(status)).inc();
        if (status === 413) headers = { ...headers, connection: 'close' };
        send(res, status, encodeError(message), headers);
        // A body left unread (413) is not drained: the connection closes after the answer.
        if (status === 413) res.on('finish', () => req.socket.destroy());
      },
    );
  });
  server.maxConnections = wcfg.max_connections;
  server.keepAliveTimeout = 65_000;

  return {
    server,
    models,
    registry,
    listen: () =>
      new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(wcfg.port, wcfg.host, () => {
          server.off('error', reject);
          resolve(server.address() as AddressInfo);
        });
      }),
    close: async () => {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      await models.close();
    },
  };
}
