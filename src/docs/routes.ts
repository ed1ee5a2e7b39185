import type { GatewayContext } from '../http/context.js';
import type { RouteSpec } from '../http/route.js';
import { ApiError } from '../problems/api-error.js';
import { gzipped, loadDocsAssets, type Asset } from './assets.js';

/**
 * No inline script or style anywhere (Swagger UI's initializer is a file of its own); requests only to
 * this origin, so a page cannot send a secret or a result anywhere else; no framing, no <base>, no forms.
 */
export const DOCS_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; connect-src 'self'; " +
  "frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

function send(ctx: GatewayContext, a: Asset, gz: Buffer | undefined): void {
  ctx.set('Content-Security-Policy', DOCS_CSP);
  ctx.set('X-Content-Type-Options', 'nosniff');
  ctx.set('Referrer-Policy', 'no-referrer');
  ctx.set('Cross-Origin-Opener-Policy', 'same-origin');
  ctx.set('Cross-Origin-Resource-Policy', 'same-origin');
  ctx.set('Cache-Control', a.cacheControl);
  ctx.set('Vary', 'Accept-Encoding');
  ctx.set('ETag', gz ? `${a.etag.slice(0, -1)}-gz"` : a.etag);
  ctx.type = a.type;
  ctx.status = 200;
  if (ctx.fresh) {
    ctx.status = 304;
    return;
  }
  if (gz) ctx.set('Content-Encoding', 'gzip');
  ctx.body = gz ?? a.body;
}

async function serve(ctx: GatewayContext, a: Asset): Promise<void> {
  const gz = a.body.length > 1024 && ctx.acceptsEncodings('gzip', 'identity') === 'gzip' ? await gzipped(a) : undefined;
  send(ctx, a, gz);
}

/**
 * GET /docs (Swagger UI on /openapi.json, "Try it out" signed in the browser), GET /playground and their
 * files, when `[docs] enabled`. Public: the pages hold no secret; the keypair is typed into the page and
 * stays in the tab (sessionStorage), used only to sign with WebCrypto.
 */
export function docsRoutes(): RouteSpec[] {
  const assets = loadDocsAssets();
  const page = (path: string, file: string, summary: string): RouteSpec => ({
    method: 'GET',
    path,
    summary,
    access: 'public',
    hidden: true,
    responses: { 200: { description: 'HTML.' } },
    handler: (ctx) => serve(ctx, assets.get(file)!),
  });
  return [
    page('/docs', 'docs.html', 'Interactive API documentation (Swagger UI) whose "Try it out" signs requests in the browser.'),
    page('/playground', 'playground.html', 'Pick a model, drop an image, see the result drawn over it.'),
    {
      method: 'GET',
      path: '/docs/assets/:file',
      summary: 'The files of /docs and /playground (an allow-list).',
      access: 'public',
      hidden: true,
      responses: { 200: { description: 'A script, style sheet or image.' } },
      async handler(ctx) {
        const name = ctx.params.file;
        const a = assets.get(name);
        // The pages have their own paths; as assets they would be a second URL for each.
        if (a === undefined || name.endsWith('.html')) {
          throw new ApiError(404, 'url-not-found', 'No such file of the docs pages.');
        }
        await serve(ctx, a);
      },
    },
  ];
}
