import busboy from 'busboy';
import { decodeBase64 } from '../http/base64.js';
import { ApiError } from '../problems/api-error.js';
import { canonicalContentType } from '../signing/canonical.js';

/**
 * The image of an inference request, from one of three shapes: a raw `image/*`
 * (or octet-stream) body, a multipart form with an `image` field, or JSON
 * `{"image": "<base64>"}`. The body was already read (and hashed) as bytes.
 */
export async function extractImage(
  raw: Buffer,
  contentType: string | undefined,
  json: Record<string, unknown> | undefined,
  maxBytes: number,
): Promise<Buffer> {
  const type = canonicalContentType(contentType);
  let image: Buffer;
  if (type.startsWith('image/') || type === 'application/octet-stream') {
    image = raw;
  } else if (type === 'multipart/form-data') {
    image = await multipartImage(raw, contentType!, maxBytes);
  } else if (type === 'application/json') {
    const value = json?.image;
    if (typeof value !== 'string') throw new ApiError(400, 'invalid-api-params', 'JSON body needs "image": a base64 string.');
    const decoded = decodeBase64(value, { dataUrl: true, maxBytes });
    if (!decoded.ok) {
      if (decoded.reason === 'too-large') throw tooLarge(maxBytes);
      throw new ApiError(400, 'invalid-image', `"image" is ${decoded.detail}.`);
    }
    image = decoded.bytes;
  } else {
    throw new ApiError(415, 'unsupported-media-type', 'Send the image as image/*, multipart/form-data (field "image") or JSON {"image": base64}.');
  }
  if (image.length === 0) throw new ApiError(400, 'invalid-image', 'The image is empty.');
  if (image.length > maxBytes) throw tooLarge(maxBytes);
  return image;
}

function tooLarge(maxBytes: number): ApiError {
  return new ApiError(413, 'request-too-large', `The image is larger than ${maxBytes} bytes.`);
}

function multipartImage(raw: Buffer, contentType: string, maxBytes: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    let parser: busboy.Busboy;
    try {
      // latin1 keeps the bytes of a file-less "image" field intact (it arrives as a string).
      parser = busboy({
        headers: { 'content-type': contentType },
        defCharset: 'latin1',
        limits: { files: 16, fileSize: maxBytes + 1, fields: 16, parts: 32, fieldSize: maxBytes + 1 },
      });
    } catch {
      reject(new ApiError(400, 'invalid-api-params', 'Malformed multipart Content-Type (no boundary?).'));
      return;
    }
    let found: Buffer | undefined;
    let failure: ApiError | undefined;
    parser.on('file', (name, stream) => {
      // A part cut short errors on its own stream; unheard, that error would kill the process.
      stream.on('error', () => {
        failure ??= new ApiError(400, 'invalid-api-params', 'Malformed multipart body.');
      });
      if (name !== 'image' || found) {
        stream.resume(); // other parts are drained, not kept
        return;
      }
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('limit', () => (failure = tooLarge(maxBytes)));
      stream.on('end', () => {
        if (!failure && !found) found = Buffer.concat(chunks);
      });
    });
    // `curl -F 'image=<file.png'` sends the part without a filename: busboy calls it a field.
    parser.on('field', (name, value, info) => {
      if (name !== 'image' || found) return;
      if (info.valueTruncated) failure = tooLarge(maxBytes);
      else found = Buffer.from(value, 'latin1');
    });
    parser.on('error', () => reject(new ApiError(400, 'invalid-api-params', 'Malformed multipart body.')));
    parser.on('close', () => {
      if (failure) reject(failure);
      else if (!found) reject(new ApiError(400, 'invalid-api-params', 'Multipart body has no "image" file field.'));
      else resolve(found);
    });
    parser.end(raw);
  });
}
