import busboy from 'busboy';
import type { GatewayContext } from '../http/context.js';
import { bodyOf, feedBody, memoryBody, type RequestBody } from '../http/request-body.js';
import { spoolPart, type DiskFile, type RequestFiles } from '../http/spool.js';
import type { RouteSpec } from '../http/route.js';
import { fileStamp, restoresPerEntry, restoreZip, sendZipBackup, targetDomain, ZIP_TYPES, type ModelRouteDeps } from '../models/routes.js';
import { ApiError } from '../problems/api-error.js';
import { canonicalContentType } from '../signing/canonical.js';
import { VISION_EXAMPLES } from './examples.js';

/** `?domain=` for superadmins, as on /models (DeepStack clients send none). */
const domainQuery = {
  type: 'object',
  properties: { domain: { type: 'string', minLength: 1, maxLength: 128 }, owner_access_key: { type: 'string', maxLength: 128 } },
};

/**
 * DeepStack's `/v1/backup` and `/v1/restore` (DESIGN.md "DeepStack-compatible API"), on the zip format of
 * store/model-archive.ts. Admin keypairs only (Backend.AI signature, or `admin_key` / x-api-key); an admin
 * works on its own domain, a superadmin on every domain (or `?domain=`). Unlike DeepStack, which extracts a
 * restored zip's entries onto disk as named, a restore is checked whole and applied all or nothing.
 */

export function backupRoutes(deps: ModelRouteDeps): RouteSpec[] {
  return [
    {
      method: 'POST',
      path: '/v1/backup',
      summary: "DeepStack's backup: a zip of the domain's custom models and configs (a superadmin: every domain's), as an attachment Backup_<timestamp>.backup.",
      access: 'admin',
      owner: 'query',
      query: domainQuery,
      bodyTypes: ['multipart/form-data', 'application/x-www-form-urlencoded'],
      responses: { 200: { description: 'The zip (application/octet-stream).', example: VISION_EXAMPLES['/v1/backup'] } },
      async handler(ctx) {
        const domain = targetDomain(ctx, ctx.state.owner!, { allDomains: true });
        await sendZipBackup(ctx, deps, domain, `Backup_${fileStamp()}.backup`, 'application/octet-stream');
      },
    },
    {
      method: 'POST',
      path: '/v1/restore',
      summary: "DeepStack's restore: multipart file `file`, a zip made by /v1/backup (or GET /models/backup). Every entry is checked and every model loaded before the store changes; any fault refuses the whole archive (400) and changes nothing.",
      access: 'admin',
      owner: 'query',
      query: domainQuery,
      bodyTypes: ['multipart/form-data', ...ZIP_TYPES],
      upload: true,
      responses: { 200: { description: '{"success": true, "duration"}', example: VISION_EXAMPLES['/v1/restore'] } },
      async handler(ctx) {
        const started = performance.now();
        const owner = ctx.state.owner!;
        const domain = targetDomain(ctx, owner)!;
        const zip = await archiveOf(ctx, deps.maxMemoryBytes);
        await restoreZip(deps, zip, restoresPerEntry(ctx, owner) ? undefined : domain);
        ctx.body = { success: true, duration: Math.round((performance.now() - started) * 10) / 10 };
      },
    },
  ];
}

/**
 * The archive: the multipart part `file` (a file part, or a field without a filename), or a raw zip body. A
 * spooled body is used where it lies, and its `file` part is written to a spool file (never into memory).
 */
async function archiveOf(ctx: GatewayContext, maxMemoryBytes: number): Promise<Buffer | RequestBody | DiskFile> {
  const contentType = ctx.get('content-type');
  const type = canonicalContentType(contentType);
  const body = bodyOf(ctx.state);
  if (ZIP_TYPES.has(type)) return body;
  if (type !== 'multipart/form-data') throw new ApiError(415, 'unsupported-media-type', 'Send the backup as multipart/form-data with the zip in the file part "file".');
  const spool = body.path === undefined ? undefined : ctx.state.upload?.files;
  const file = await multipartFile(body, contentType, 'file', spool, maxMemoryBytes);
  if (file === undefined || (Buffer.isBuffer(file) ? file.length : file.size) === 0) throw new ApiError(400, 'invalid-api-params', 'The multipart body has no "file" part with the backup.');
  return file;
}

/**
 * One named part of a multipart body: in memory when the body is (read within the body limit, so no part can
 * be larger), else (a spooled body) a file part written to a spool file, and a plain field held in memory
 * within `maxMemoryBytes`.
 */
function multipartFile(raw: Buffer | RequestBody, contentType: string, field: string, spool: RequestFiles | undefined, maxMemoryBytes: number): Promise<Buffer | DiskFile | undefined> {
  const malformed = () => new ApiError(400, 'invalid-api-params', 'Malformed multipart body.');
  const body = Buffer.isBuffer(raw) ? memoryBody(raw) : raw;
  return new Promise((resolve, reject) => {
    let parser: busboy.Busboy;
    try {
      // latin1 keeps the bytes of a part sent without a filename (busboy hands it over as a string).
      const fieldSize = (spool === undefined ? body.size : Math.min(body.size, maxMemoryBytes)) + 1;
      parser = busboy({ headers: { 'content-type': contentType }, defCharset: 'latin1', limits: { files: 8, fields: 16, parts: 24, fieldSize, fileSize: body.size + 1 } });
    } catch {
      reject(new ApiError(400, 'invalid-api-params', 'Malformed multipart Content-Type (no boundary?).'));
      return;
    }
    let found: Buffer | DiskFile | undefined;
    let writing: Promise<void> = Promise.resolve();
    // Set when the part starts: a file's bytes end after busboy may have emitted the next part.
    let seen = false;
    let failure: ApiError | undefined;
    const twice = () => (failure ??= new ApiError(400, 'invalid-api-params', `The form part ${JSON.stringify(field)} is given more than once.`));
    parser.on('file', (name, stream) => {
      // A part cut short errors on its own stream; unheard, that error would end the process.
      stream.on('error', () => (failure ??= malformed()));
      if (name !== field) {
        stream.resume();
        return;
      }
      if (seen) twice();
      seen = true;
      if (spool !== undefined) {
        writing = spoolPart(stream, spool).then((written) => {
          if (written instanceof ApiError) failure ??= written;
          else if (written !== undefined) found = written;
        });
        return;
      }
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => (found = Buffer.concat(chunks)));
    });
    parser.on('field', (name, value, info) => {
      if (name !== field) return;
      if (seen) twice();
      seen = true;
      if (info.valueTruncated) failure ??= new ApiError(413, 'request-too-large', `The form field ${JSON.stringify(field)} is larger than ${maxMemoryBytes} bytes; send the backup as a file part.`);
      found = Buffer.from(value, 'latin1');
    });
    parser.on('error', () => reject(malformed()));
    parser.on('close', () => void writing.then(() => (failure ? reject(failure) : resolve(found))));
    feedBody(body, parser, () => reject(malformed()));
  });
}
