import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { gzip } from 'node:zlib';

const gzipAsync = promisify(gzip);

/** One file the docs pages may load: read once at start, never looked up by a client-given path. */
export interface Asset {
  body: Buffer;
  type: string;
  etag: string;
  cacheControl: string;
  /** The gzip variant, made on first request (swagger-ui-bundle.js is 1.7 MB, 0.5 MB gzipped). */
  gzipped?: Promise<Buffer>;
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.png': 'image/png',
};

/** Our own page files (src/docs/assets/): revalidated on every load, so an upgrade shows at once. */
const OWN = ['docs.html', 'playground.html', 'docs.js', 'playground.js', 'signing.js', 'credentials.js', 'draw.js', 'kernelgate.css'];
/** From swagger-ui-dist: versioned with the package, cached for a day. */
const SWAGGER = ['swagger-ui-bundle.js', 'swagger-ui.css', 'favicon-32x32.png'];

/** The folder with package.json above this module: the same whether it runs from src/ (tests) or dist/src/. */
function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error('kernelgate: package.json not found above ' + fileURLToPath(import.meta.url));
    dir = parent;
  }
  return dir;
}

function asset(path: string, name: string, cacheControl: string): Asset {
  const body = readFileSync(path);
  const ext = name.slice(name.lastIndexOf('.'));
  const type = TYPES[ext];
  if (type === undefined) throw new Error(`kernelgate: no content type for docs asset ${name}`);
  return { body, type, cacheControl, etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"` };
}

/**
 * The allow-list of the docs pages' files, by the name in their URL. Nothing outside it is served:
 * no directory is ever joined with a name from a request.
 */
export function loadDocsAssets(): ReadonlyMap<string, Asset> {
  const own = join(packageRoot(), 'src', 'docs', 'assets');
  const swagger = dirname(createRequire(import.meta.url).resolve('swagger-ui-dist/package.json'));
  const assets = new Map<string, Asset>();
  for (const name of OWN) assets.set(name, asset(join(own, name), name, 'no-cache'));
  for (const name of SWAGGER) assets.set(name, asset(join(swagger, name), name, 'public, max-age=86400'));
  return assets;
}

export function gzipped(a: Asset): Promise<Buffer> {
  a.gzipped ??= gzipAsync(a.body, { level: 6 });
  return a.gzipped;
}
