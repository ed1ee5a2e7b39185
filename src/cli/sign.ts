import { readFileSync } from 'node:fs';
import { extname } from 'node:path';
import { parseArgs } from 'node:util';
import { KernelgateClient } from '../client/client.js';
import { credentials, describeFetchFailure, endpointOf } from './credentials.js';
import { algorithmOfSignMethod } from '../signing/algorithms.js';

const IMAGE_TYPES: Record<string, string> = {
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.webp': 'image/webp',
  '.gif': 'image/gif',
  '.tif': 'image/tiff',
  '.tiff': 'image/tiff',
};

export interface Io {
  out(chunk: string | Uint8Array): void;
  err(line: string): void;
  env: NodeJS.ProcessEnv;
}

/** `kernelgate sign METHOD PATH [...]`: a curl for this API. */
export async function signCommand(argv: string[], io: Io): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      data: { type: 'string', short: 'd' },
      'data-binary': { type: 'string' },
      'content-type': { type: 'string' },
      header: { type: 'string', short: 'H', multiple: true },
      endpoint: { type: 'string' },
      keypair: { type: 'string', short: 'k' },
      include: { type: 'boolean', short: 'i' },
      'headers-only': { type: 'boolean' },
      'sign-method': { type: 'string', default: 'HMAC-SHA256' },
      'api-version': { type: 'string' },
      'body-hash': { type: 'string', default: 'strict' },
      fail: { type: 'boolean', short: 'f' },
      all: { type: 'boolean' },
    },
  });
  const [method, path] = positionals;
  if (!method || !path || !path.startsWith('/')) {
    throw new Error('usage: kernelgate sign METHOD /PATH [--data JSON|@file] [--data-binary @file] [--endpoint URL] [-i] [--headers-only] [--all]');
  }
  const algorithm = algorithmOfSignMethod(values['sign-method']!);
  if (!algorithm) throw new Error(`unsupported --sign-method ${values['sign-method']}`);
  if (values['body-hash'] !== 'strict' && values['body-hash'] !== 'backendai') throw new Error('--body-hash must be strict or backendai');

  let body: Uint8Array | string | undefined;
  let contentType = values['content-type'];
  const source = values['data-binary'] ?? values.data;
  if (source !== undefined) {
    if (source.startsWith('@')) {
      const file = source.slice(1);
      body = readFileSync(file);
      contentType ??= IMAGE_TYPES[extname(file).toLowerCase()] ?? (values.data !== undefined ? 'application/json' : 'application/octet-stream');
    } else {
      body = source;
      contentType ??= 'application/json';
    }
  }
  const endpoint = endpointOf(values.endpoint, io.env);
  const client = new KernelgateClient({
    endpoint,
    ...(await credentials(values.keypair, io.env)),
    algorithm,
    apiVersion: values['api-version'],
    bodyHashMode: values['body-hash'],
  });
  const extra: Record<string, string> = {};
  for (const h of values.header ?? []) {
    const colon = h.indexOf(':');
    if (colon <= 0) throw new Error(`-H expects "Name: value", got ${h}`);
    extra[h.slice(0, colon).trim()] = h.slice(colon + 1).trim();
  }
  if (values['headers-only']) {
    const url = new URL(endpoint);
    const target = (url.pathname.replace(/\/$/, '') + path);
    for (const [k, v] of Object.entries(client.sign(method.toUpperCase(), target, body, contentType))) io.out(`${k}: ${v}\n`);
    return 0;
  }
  if (values.all && (method.toUpperCase() !== 'GET' || body !== undefined)) throw new Error('--all follows rel="next" links of a GET without a body');
  const url = new URL(new URL(endpoint).pathname.replace(/\/$/, '') + path, new URL(endpoint).origin);
  // --all: every page in turn, each body on its own line (`jq -s` joins them), stopping after an error page.
  const responses = values.all ? client.pages(path, { headers: extra }) : once(client.request(method, path, { body, contentType, headers: extra }));
  let failed = false;
  try {
    for await (const response of responses) {
      await print(response, values.include === true, io);
      failed ||= response.status >= 400;
    }
  } catch (error) {
    if (error instanceof Error && error.message.startsWith('rel="next"')) throw error;
    throw describeFetchFailure(url.href, error);
  }
  return values.fail && failed ? 22 : 0;
}

async function* once(response: Promise<Response>): AsyncGenerator<Response> {
  yield await response;
}

async function print(response: Response, include: boolean, io: Io): Promise<void> {
  if (include) {
    io.out(`HTTP/1.1 ${response.status} ${response.statusText}\n`);
    response.headers.forEach((v, k) => io.out(`${k}: ${v}\n`));
    io.out('\n');
  }
  const bytes = new Uint8Array(await response.arrayBuffer());
  io.out(bytes);
  if (bytes.length > 0 && bytes[bytes.length - 1] !== 0x0a) io.out('\n');
}
