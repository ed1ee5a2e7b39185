/**
 * DeepStack clients, byte for byte in the parts that matter: Python `requests` as deepstack-python 0.8
 * (Home Assistant) calls it — `requests.post(url, files={"image": image_bytes}, data={"api_key": key, ...})`,
 * which urllib3 encodes as the data fields first, then the file part named "image" with filename "image"
 * and no part Content-Type, a 32-hex-digit boundary — and what Blue Iris emulators send.
 */
import { randomBytes } from 'node:crypto';
import { tinyClassifier } from './onnx.js';

export type Part = { name: string; value: string } | { name: string; file: Buffer; filename?: string; type?: string };

export function multipartBody(parts: Part[], boundary = randomBytes(16).toString('hex')): { body: Buffer; contentType: string } {
  const chunks: Buffer[] = [];
  for (const p of parts) {
    if ('value' in p) {
      chunks.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${p.name}"\r\n\r\n${p.value}\r\n`));
    } else {
      const type = p.type === undefined ? '' : `Content-Type: ${p.type}\r\n`;
      chunks.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${p.name}"; filename="${p.filename ?? p.name}"\r\n${type}\r\n`), p.file, Buffer.from('\r\n'));
    }
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return { body: Buffer.concat(chunks), contentType: `multipart/form-data; boundary=${boundary}` };
}

/** deepstack-python's post_image: data fields (api_key inserted, min_confidence when given), then files={"image": bytes}. */
export function deepstackPython(image: Buffer, apiKey: string, data: Record<string, string> = {}): { body: Buffer; contentType: string } {
  const fields = { ...data, api_key: apiKey };
  return multipartBody([...Object.entries(fields).map(([name, value]) => ({ name, value })), { name: 'image', file: image }]);
}

/** A multipart model upload (files `model` and `config`) of a tiny 8x8 classifier named `name`. */
export function tinyModelForm(name: string): { body: Buffer; contentType: string } {
  return multipartBody([
    { name: 'model', file: tinyClassifier(8, 8), filename: 'model.onnx' },
    { name: 'config', file: Buffer.from(JSON.stringify({ name, task: 'classify', input: { width: 8, height: 8 }, labels: ['a', 'b'] })), filename: 'config.json' },
  ]);
}
