import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { basename } from 'node:path';
import { parseArgs } from 'node:util';
import { KernelgateClient } from '../client/client.js';
import { credentials, describeFetchFailure, endpointOf } from './credentials.js';
import type { Io } from './sign.js';

/**
 * `kernelgate model upload|list|remove|backup|restore`: the admin's side of
 * custom models, so nobody has to base64 an ONNX file into JSON by hand.
 */
export async function modelCommand(argv: string[], io: Io): Promise<number> {
  const [action, ...rest] = argv;
  const { values, positionals } = parseArgs({
    args: rest,
    allowPositionals: true,
    options: {
      onnx: { type: 'string' },
      config: { type: 'string' },
      zip: { type: 'string' },
      endpoint: { type: 'string' },
      keypair: { type: 'string', short: 'k' },
    },
  });
  if (!['upload', 'list', 'remove', 'backup', 'restore'].includes(action ?? '')) {
    throw new Error('usage: kernelgate model upload|list|remove|backup|restore (see kernelgate model --help)');
  }
  const endpoint = endpointOf(values.endpoint, io.env);
  const client = new KernelgateClient({ endpoint, ...(await credentials(values.keypair, io.env)) });
  const request = (method: string, path: string, options?: Parameters<KernelgateClient['request']>[2]) =>
    client.request(method, path, options).catch((error: unknown) => {
      throw describeFetchFailure(new URL(new URL(endpoint).pathname.replace(/\/$/, '') + path, new URL(endpoint).origin).href, error);
    });
  let response: Response;
  switch (action) {
    case 'upload': {
      if (!values.onnx || !values.config) throw new Error('usage: kernelgate model upload --config CONFIG.json --onnx MODEL.onnx');
      const config = JSON.parse(readFileSync(values.config, 'utf8')) as Record<string, unknown>;
      // Multipart, not base64 JSON: the gateway streams it to disk within server.upload_limit_bytes, so models
      // larger than the body limit upload too. `domain` and `owner_access_key` go in the (signed) query string.
      const { domain, owner_access_key: owner, sha256: _sha, model: _model, ...modelConfig } = config;
      const query = new URLSearchParams();
      if (domain !== undefined) query.set('domain', String(domain));
      if (owner !== undefined) query.set('owner_access_key', String(owner));
      const form = multipart([
        { name: 'config', filename: 'config.json', type: 'application/json', data: Buffer.from(JSON.stringify(modelConfig)) },
        { name: 'model', filename: basename(values.onnx), type: 'application/octet-stream', data: readFileSync(values.onnx) },
      ]);
      response = await request('POST', `/models${query.size > 0 ? `?${query}` : ''}`, form);
      break;
    }
    case 'list':
      response = await request('GET', '/models');
      break;
    case 'remove':
      if (!positionals[0]) throw new Error('usage: kernelgate model remove NAME');
      response = await request('DELETE', `/models/${encodeURIComponent(positionals[0])}`);
      break;
    case 'backup':
      if (values.zip !== undefined) {
        response = await request('GET', '/models/backup', { headers: { accept: 'application/zip' } });
        if (!response.ok) break;
        const zip = Buffer.from(await response.arrayBuffer());
        writeFileSync(values.zip, zip);
        io.out(`${JSON.stringify({ written: values.zip, bytes: zip.length })}\n`);
        return 0;
      }
      response = await request('GET', '/models/backup');
      break;
    case 'restore': {
      if (!positionals[0]) throw new Error('usage: kernelgate model restore BACKUP.json|BACKUP.zip');
      const backup = readFileSync(positionals[0]);
      // A zip starts with a local file header (or, empty, with its end record): sent as it is.
      const isZip = backup.subarray(0, 2).toString('latin1') === 'PK';
      response = await request('POST', '/models/restore', { body: backup, contentType: isZip ? 'application/zip' : 'application/json' });
      break;
    }
    default:
      throw new Error('usage: kernelgate model upload|list|remove|backup|restore');
  }
  io.out(`${await response.text()}\n`);
  return response.ok ? 0 : 1;
}

/** A multipart/form-data body of file parts. */
function multipart(parts: Array<{ name: string; filename: string; type: string; data: Buffer }>): { body: Buffer; contentType: string } {
  const boundary = `kernelgate-${randomBytes(12).toString('hex')}`;
  const quoted = (v: string) => JSON.stringify(v.replace(/[\r\n"]/g, '_'));
  const chunks = parts.flatMap((p) => [
    Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name=${quoted(p.name)}; filename=${quoted(p.filename)}\r\nContent-Type: ${p.type}\r\n\r\n`),
    p.data,
    Buffer.from('\r\n'),
  ]);
  return { body: Buffer.concat([...chunks, Buffer.from(`--${boundary}--\r\n`)]), contentType: `multipart/form-data; boundary=${boundary}` };
}
