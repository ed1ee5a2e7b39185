/**
 * Face detection end to end: the built-in `face` kernel through a running gateway (signed HTTP) vs the
 * same kernel in-process, in the same run: the gateway's overhead (goal ≤ 10 %), images/s at 1, 2 and 4
 * clients, a 640x480 photo's median time, and what running both BlazeFace models costs over the front one.
 *
 *   bash .ci/photos && npx tsc -p tsconfig.json && node --import tsx bench/face.ts [--rounds 20] [--seconds 6] [--route /session/{session}/infer]
 *
 * --client process (default) | inline: where the HTTP client runs. `process`: a plain node:http client in a child
 * process of its own (no models, no tsx), which times each exchange itself, as a camera integration is its own
 * process; `inline`: this process, which also holds the in-process kernels and their garbage (its HTTP is slower).
 *
 * --auth hmac (default) | apikey: how the client authenticates. `hmac`: a Backend.AI signature (the client hashes and
 * signs each body); `apikey`: what DeepStack clients send, an `api_key` form field (nothing to sign; the gateway checks
 * the key instead of verifying a signature). /auth/test then gets the key as `x-api-key`.
 *
 * --route: the path requests go to. `/session/{session}/infer` (default) creates a session with
 * `image: "face"` and sends the photo as a raw image/jpeg body; any other path (e.g. /v1/vision/face)
 * gets DeepStack's multipart form (`image` file field), signed the same way.
 *
 * The overhead is split in the same rounds: the client's signing (HMAC + body hash), the transport (the
 * same bytes POSTed to a bare `node:http` server in its own process that reads them and answers a short
 * JSON: TCP, HTTP framing, two processes' wake-ups), and what is left, the gateway's own work. Each is
 * measured on a new connection per request (what deepstack-python's `requests.post` does) and on a
 * kept-alive one (a client that reuses its connection).
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Agent, request as httpRequest } from 'node:http';
import { once } from 'node:events';
import { parseArgs } from 'node:util';
import sharp from 'sharp';
import { FaceKernel } from '../src/inference/face/index.js';
import { RunnerPool } from '../src/inference/runners/pool.js';
import { signRequest } from '../src/signing/index.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ALICE, startGateway, writeKeypairWithApiKey, type TestGateway } from '../test/helpers/gateway.js';
import { photo, type Photo } from '../test/helpers/photos.js';
import { machine, median } from './lib.js';
import { writeSection } from './lib.js';

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '20' },
    seconds: { type: 'string', default: '6' },
    route: { type: 'string', default: '/session/{session}/infer' },
    client: { type: 'string', default: 'process' },
    auth: { type: 'string', default: 'hmac' },
  },
});
const ROUNDS = Number(values.rounds);
const SECONDS = Number(values.seconds);
const ROUTE = values.route!;
/** `process`: HTTP from a small client process of its own, as a camera integration calls; `inline`: from this one. */
const CLIENT = values.client === 'inline' ? 'inline' : 'process';
const AUTH = values.auth === 'apikey' ? 'apikey' : 'hmac';

const now = () => performance.now();
const percentile = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)] ?? NaN;
};

/** 640x480 JPEGs, as a camera sends them: two with a face, two without. */
async function photos(): Promise<Array<{ name: Photo; jpeg: Buffer }>> {
  const names: Photo[] = ['astronaut', 'camera', 'chelsea', 'coffee'];
  return Promise.all(names.map(async (name) => ({ name, jpeg: await sharp(photo(name)).resize(640, 480, { fit: 'cover', position: 'top' }).jpeg({ quality: 90 }).toBuffer() })));
}

function multipart(jpeg: Buffer, apiKey?: string): { body: Buffer; contentType: string } {
  const boundary = `----kg-bench-${randomBytes(6).toString('hex')}`;
  const body = Buffer.concat([
    Buffer.from(apiKey === undefined ? '' : `--${boundary}\r\nContent-Disposition: form-data; name="api_key"\r\n\r\n${apiKey}\r\n`),
    Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="image"; filename="photo.jpg"\r\nContent-Type: image/jpeg\r\n\r\n`),
    jpeg,
    Buffer.from(`\r\n--${boundary}--\r\n`),
  ]);
  return { body, contentType: `multipart/form-data; boundary=${boundary}` };
}

/** A bare node:http server in its own process: reads the body, answers a short JSON (the transport floor). */
async function startBare(): Promise<{ port: number; stop(): void }> {
  const code = `require('node:http').createServer((q, r) => { q.resume(); q.on('end', () => { r.setHeader('content-type', 'application/json'); r.end('{"success":true,"predictions":[],"duration":0}'); }); }).listen(0, '127.0.0.1', function () { console.log(this.address().port); });`;
  const proc = spawn(process.execPath, ['-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
  const [chunk] = (await once(proc.stdout!, 'data')) as [Buffer];
  return { port: Number(chunk.toString().trim()), stop: () => proc.kill() };
}

const keepAlive = new Agent({ keepAlive: true, maxSockets: 8 });

interface Exchange {
  status: number;
  json: Record<string, unknown>;
  /** The HTTP exchange alone: request written to response read, ms. */
  ms: number;
}

/** One POST of `body` with `headers` from this process; `keep`: on a kept-alive connection, else a new one. */
function postInline(port: number, path: string, headers: Record<string, string>, body: Buffer, keep: boolean): Promise<Exchange> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const r = httpRequest({ host: '127.0.0.1', port, method: 'POST', path, headers: { ...headers, 'Content-Length': String(body.length) }, agent: keep ? keepAlive : false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, ms: performance.now() - t0, json: JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}') as Record<string, unknown> }));
      res.on('error', reject);
    });
    r.on('error', reject);
    r.end(body);
  });
}

/** The same POST from a child process that holds the bodies (sent once) and times each exchange itself. */
function startClientProcess(): { post(port: number, path: string, headers: Record<string, string>, body: Buffer, keep: boolean): Promise<Exchange>; stop(): void } {
  const code = `
    const http = require('node:http');
    const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
    const bodies = new Map();
    process.on('message', (m) => {
      if (m.body !== undefined) return void bodies.set(m.key, Buffer.from(m.body, 'base64'));
      const body = bodies.get(m.key);
      const t0 = performance.now();
      const r = http.request({ host: '127.0.0.1', port: m.port, method: 'POST', path: m.path, headers: { ...m.headers, 'Content-Length': String(body.length) }, agent: m.keep ? agent : false }, (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => process.send({ id: m.id, ms: performance.now() - t0, status: res.statusCode, text: Buffer.concat(chunks).toString('utf8') }));
      });
      r.on('error', (e) => process.send({ id: m.id, error: String(e) }));
      r.end(body);
    });`;
  const proc = spawn(process.execPath, ['-e', code], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const keys = new Map<Buffer, number>();
  const waiting = new Map<number, { resolve: (e: Exchange) => void; reject: (e: Error) => void }>();
  let next = 0;
  proc.on('message', (m: { id: number; ms: number; status: number; text: string; error?: string }) => {
    const w = waiting.get(m.id);
    waiting.delete(m.id);
    if (m.error !== undefined) w?.reject(new Error(m.error));
    else w?.resolve({ status: m.status, ms: m.ms, json: JSON.parse(m.text || '{}') as Record<string, unknown> });
  });
  return {
    post(port, path, headers, body, keep) {
      let key = keys.get(body);
      if (key === undefined) {
        key = keys.size;
        keys.set(body, key);
        proc.send({ key, body: body.toString('base64') });
      }
      const id = next++;
      return new Promise((resolve, reject) => {
        waiting.set(id, { resolve, reject });
        proc.send({ id, key, port, path, headers, keep });
      });
    },
    stop: () => proc.kill(),
  };
}

async function main(): Promise<void> {
  const images = await photos();
  const pool = new RunnerPool();
  const both = await FaceKernel.load({ providers: ['cpu'] }, pool);
  const frontOnly = await FaceKernel.load({ providers: ['cpu'], models: 'front' }, pool);
  const bare = await startBare();
  const client = CLIENT === 'process' ? startClientProcess() : undefined;
  const post = client ? client.post : postInline;
  // apikey: ALICE's file carries a key (written before start, so the gateway loads it with the keypair).
  const keyDir = mkdtempSync(join(tmpdir(), 'kg-bench-face-keys-'));
  const apiKey = AUTH === 'apikey' ? writeKeypairWithApiKey(keyDir, ALICE) : undefined;
  const gw: TestGateway = await startGateway({
    config: `[ratelimit]\ndefault_limit = 1000000\n[inference]\nmax_queue = 64\n${AUTH === 'apikey' ? '[auth]\nschemes = ["backendai", "apikey"]\n' : ''}`,
    ...(AUTH === 'apikey' ? { keypairDir: keyDir, keypairs: [] } : {}),
  });
  try {
    let target = ROUTE;
    if (ROUTE.includes('{session}')) {
      const created = await gw.signed({ method: 'POST', target: '/session', as: ALICE, body: JSON.stringify({ name: 'bench-face', image: 'face' }) });
      if (created.status >= 300) throw new Error(`session: ${created.text}`);
      target = ROUTE.replace('{session}', 'bench-face');
    }
    const host = `127.0.0.1:${gw.port}`;
    const payloads = new Map<Buffer, { body: Buffer; contentType: string }>();
    /** Each photo's body, built once (the client process is sent each body once). */
    const payload = (jpeg: Buffer) => {
      let p = payloads.get(jpeg);
      if (p === undefined) payloads.set(jpeg, (p = ROUTE.includes('{session}') ? { body: jpeg, contentType: 'image/jpeg' } : multipart(jpeg, apiKey)));
      return p;
    };
    /** Signs as an SDK client does (the time is kept apart: it is the client's, not the gateway's). */
    const signFor = (path: string, body: Buffer, contentType: string) => {
      // A DeepStack client's key is in the form (or, for /auth/test, its header): nothing to compute.
      if (apiKey !== undefined) return { headers: { 'Content-Type': contentType, ...(contentType.startsWith('multipart/') ? {} : { 'x-api-key': apiKey }) } as Record<string, string>, ms: 0 };
      const t0 = now();
      const headers = signRequest({ method: 'POST', target: path, host, accessKey: ALICE.accessKey, secretKey: ALICE.secretKey, body, contentType }).headers as Record<string, string>;
      return { headers, ms: now() - t0 };
    };
    let lastSignMs = 0;
    /** A signed call through the gateway; `ms`: signing plus the HTTP exchange, as the client sees it. */
    const viaHttp = async (jpeg: Buffer, keep = false) => {
      const { body, contentType } = payload(jpeg);
      const { headers, ms } = signFor(target, body, contentType);
      lastSignMs = ms;
      const res = await post(gw.port, target, headers, body, keep);
      if (res.status !== 200) throw new Error(`${target} ${res.status}: ${JSON.stringify(res.json)}`);
      return { ...(res.json as { predictions: unknown[]; provider?: string; duration_ms?: number; duration?: number }), ms: ms + res.ms };
    };
    /** The same bytes and headers to the bare server: what HTTP itself costs this client. */
    const viaBare = async (jpeg: Buffer, keep: boolean) => {
      const { body, contentType } = payload(jpeg);
      const res = await post(bare.port, target, { 'Content-Type': contentType, Host: host, Authorization: 'BackendAI signMethod=HMAC-SHA256, credential=x:y', Date: new Date().toUTCString(), 'X-BackendAI-Version': 'v8.20240915' }, body, keep);
      if (res.status !== 200) throw new Error(`bare ${res.status}`);
      return res.ms;
    };

    // The gateway's floor for this request: a signed POST carrying the same bytes to /auth/test (no kernel).
    const floor = async (jpeg: Buffer) => {
      const { headers, ms } = signFor('/auth/test', jpeg, 'application/octet-stream');
      const res = await post(gw.port, '/auth/test', headers, jpeg, false);
      if (res.status !== 200) throw new Error(`/auth/test ${res.status}: ${JSON.stringify(res.json)}`);
      return ms + res.ms;
    };

    // Same answers: the gateway and the in-process kernel find the same faces (reported, not assumed).
    const agreement: string[] = [];
    for (const img of images) {
      const http = (await viaHttp(img.jpeg)).predictions;
      const inproc = (await both.infer(img.jpeg)).predictions;
      // The DeepStack answer carries the box and confidence only (no landmarks): compare those fields.
      const boxes = (ps: unknown[]) => JSON.stringify(ps.map((p) => { const q = p as Record<string, unknown>; return [q.confidence, q.x_min, q.y_min, q.x_max, q.y_max]; }));
      agreement.push(`| ${img.name} | ${http.length} | ${inproc.length} | ${boxes(http) === boxes(inproc) ? 'yes' : 'NO'} |`);
    }

    // Warm-up, then alternating rounds: per image, in-process (both models), in-process (front only), HTTP.
    for (const img of images) {
      await both.infer(img.jpeg);
      await frontOnly.infer(img.jpeg);
      await viaHttp(img.jpeg);
    }
    const t = { inproc: [] as number[], front: [] as number[], http: [] as number[], inproc640: [] as number[], http640: [] as number[], ratio: [] as number[], inside: [] as number[], floor: [] as number[],
      httpKeep: [] as number[], ratioKeep: [] as number[], sign: [] as number[], bare: [] as number[], bareKeep: [] as number[] };
    for (const img of images) await viaHttp(img.jpeg, true); // open the kept-alive connection
    for (let round = 0; round < ROUNDS; round++) {
      for (const img of images) {
        let t0 = now();
        await both.infer(img.jpeg);
        const a = now() - t0;
        t.inproc.push(a);
        t0 = now();
        await frontOnly.infer(img.jpeg);
        t.front.push(now() - t0);
        const r = await viaHttp(img.jpeg);
        const b = r.ms;
        t.http.push(b);
        // Pairs taken back to back see the same background load: their ratio is steadier than two medians.
        t.ratio.push(b / a);
        // What the kernel took inside the gateway (its own duration_ms), to split the HTTP time.
        // (The DeepStack routes report `duration` in milliseconds too: src/vision/answers.ts.)
        const inside = r.duration_ms ?? r.duration ?? NaN;
        t.inside.push(b - inside);
        t.sign.push(lastSignMs);
        t.floor.push(await floor(img.jpeg));
        t.bare.push(await viaBare(img.jpeg, false));
        t.bareKeep.push(await viaBare(img.jpeg, true));
        t0 = now();
        await both.infer(img.jpeg);
        const a2 = now() - t0;
        const b2 = (await viaHttp(img.jpeg, true)).ms;
        t.httpKeep.push(b2);
        t.ratioKeep.push(b2 / a2);
        if (img.name === 'astronaut') {
          t.inproc640.push(a);
          t.http640.push(b);
        }
      }
    }

    const concurrency: string[] = [];
    for (const clients of [1, 2, 4]) {
      const latencies: number[] = [];
      const deadline = now() + SECONDS * 1000;
      const worker = async (w: number) => {
        for (let i = w; now() < deadline; i++) {
          latencies.push((await viaHttp(images[i % images.length]!.jpeg)).ms);
        }
      };
      const started = now();
      await Promise.all(Array.from({ length: clients }, (_, w) => worker(w)));
      const seconds = (now() - started) / 1000;
      concurrency.push(`| ${clients} | ${(latencies.length / seconds).toFixed(1)} | ${median(latencies).toFixed(1)} | ${percentile(latencies, 99).toFixed(1)} | ${latencies.length} |`);
    }
    const status = readFileSync(`/proc/${gw.proc.pid}/status`, 'utf8');
    const hwm = Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024;

    const mi = median(t.inproc);
    const mh = median(t.http);
    const mf = median(t.front);
    const section = [
      `Command: \`bash .ci/photos && npx tsc -p tsconfig.json && node --import tsx bench/face.ts --rounds ${ROUNDS} --seconds ${SECONDS} --route ${ROUTE} --client ${CLIENT}${AUTH === 'apikey' ? ' --auth apikey' : ''}\``,
      `Date: ${new Date().toISOString()}`,
      `Machine: ${machine()}. Shared with other engineers' builds and tests while it ran: noisy, compare the ratios of one run, not absolute figures across runs.`,
      `Photos: scikit-image's astronaut, camera (faces), chelsea, coffee (none), each cut to 640x480 and sent as JPEG (${images.map((i) => `${i.name} ${(i.jpeg.length / 1024).toFixed(0)} KiB`).join(', ')}). ${ROUNDS} rounds after a warm-up; each round runs every photo through the kernel in-process (both models, then front only; FaceKernel.infer: decode + letterbox + ONNX + decoding) and through the gateway (${ROUTE}, signed), then the same bytes in a signed POST to /auth/test, one after the other. HTTP client: ${CLIENT === 'process' ? 'a plain node:http client in a process of its own, which times each exchange (request written to response read); the signing time, taken here, is added to it' : 'this bench process (it also holds the in-process kernels)'}.`,
      '',
      '| path | median ms per photo | p99 ms | vs in-process |',
      '|---|---|---|---|',
      `| in-process, both models (the kernel's default) | ${mi.toFixed(1)} | ${percentile(t.inproc, 99).toFixed(1)} | 1.00 |`,
      `| ${AUTH === 'apikey' ? 'HTTP with an api_key form field' : 'signed HTTP'} through the gateway | ${mh.toFixed(1)} | ${percentile(t.http, 99).toFixed(1)} | ${(mh / mi).toFixed(2)} |`,
      `| in-process, front model only | ${mf.toFixed(1)} | ${percentile(t.front, 99).toFixed(1)} | ${(mf / mi).toFixed(2)} |`,
      '',
      `Gateway overhead over the same kernel in-process: **${((median(t.ratio) - 1) * 100).toFixed(1)} %** as the median of the ${t.ratio.length} back-to-back pairs' ratios (HTTP / in-process; goal ≤ 10 %; the middle half of the pairs: ${((percentile(t.ratio, 25) - 1) * 100).toFixed(1)} to ${((percentile(t.ratio, 75) - 1) * 100).toFixed(1)} %), ${(((mh - mi) / mi) * 100).toFixed(1)} % from the two medians above. HTTP time outside the kernel (wall time minus the gateway's own \`duration_ms\`: signing, transport, verification, rate limit, session lookup, JSON): median ${median(t.inside).toFixed(1)} ms, next to ${median(t.floor).toFixed(1)} ms for a signed POST of the same bytes to /auth/test (the gateway's floor for such a request, no kernel) in the same rounds. The 640x480 astronaut photo alone: median ${median(t.inproc640).toFixed(1)} ms in-process, ${median(t.http640).toFixed(1)} ms over HTTP. Running the back model beside the front one costs ${(mi - mf).toFixed(1)} ms per photo.`,
      '',
      'Where the overhead goes (medians of the same rounds; the HTTP rows send the same bytes and headers):',
      '',
      '| connection | through the gateway − in-process, ms | client signing, ms | bare node:http server (transport floor), ms | gateway\'s own work, ms | overhead (pairs) | overhead without signing and transport |',
      '|---|---|---|---|---|---|---|',
      ...(() => {
        const row = (label: string, http: number[], ratio: number[], bareMs: number[], inproc: number[]) => {
          const diff = median(http) - median(inproc);
          const own = diff - median(t.sign) - median(bareMs);
          return `| ${label} | ${diff.toFixed(2)} | ${median(t.sign).toFixed(2)} | ${median(bareMs).toFixed(2)} | ${own.toFixed(2)} | ${((median(ratio) - 1) * 100).toFixed(1)} % | ${((own / median(inproc)) * 100).toFixed(1)} % |`;
        };
        return [row('new per request (deepstack-python)', t.http, t.ratio, t.bare, t.inproc), row('kept alive', t.httpKeep, t.ratioKeep, t.bareKeep, t.inproc)];
      })(),
      '',
      'Same faces over HTTP and in-process (boxes and confidences equal):',
      '',
      '| photo | faces via HTTP | faces in-process | equal |',
      '|---|---|---|---|',
      ...agreement,
      '',
      `Concurrency (${SECONDS} s per row, signed HTTP, photos cycled; the kernel's queue runs one image at a time, [inference] concurrency = 1):`,
      '',
      '| clients | images/s | median ms | p99 ms | requests |',
      '|---|---|---|---|---|',
      ...concurrency,
      '',
      `Gateway peak RSS (VmHWM) after the run: ${hwm.toFixed(0)} MiB.`,
      '',
      `<!-- data ${JSON.stringify({ script: AUTH === 'apikey' ? 'face apikey' : 'face', date: new Date().toISOString(), inprocMs: Number(mi.toFixed(1)), httpMs: Number(mh.toFixed(1)), frontOnlyMs: Number(mf.toFixed(1)), overheadPct: Number(((median(t.ratio) - 1) * 100).toFixed(1)), outsideKernelMs: Number(median(t.inside).toFixed(1)), signedPostFloorMs: Number(median(t.floor).toFixed(1)), keepAliveOverheadPct: Number(((median(t.ratioKeep) - 1) * 100).toFixed(1)), signMs: Number(median(t.sign).toFixed(2)), bareMs: Number(median(t.bare).toFixed(2)), bareKeepMs: Number(median(t.bareKeep).toFixed(2)) })} -->`,
    ].join('\n');
    console.log(section);
    writeSection(AUTH === 'apikey' ? 'face apikey' : 'face', `## Face detection (issue 11): gateway vs the same kernel in-process${AUTH === 'apikey' ? ', DeepStack clients (api_key form field)' : ''}\n\n${section}`);
  } finally {
    await gw.stop();
    rmSync(keyDir, { recursive: true, force: true });
    bare.stop();
    client?.stop();
    keepAlive.destroy();
    await both.close();
    await frontOnly.close();
    await pool.close();
  }
}

await main();
process.exit(0);
