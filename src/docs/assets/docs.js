// Swagger UI on /openapi.json (the initializer, a file of its own: the page's CSP allows no inline
// script). Every "Try it out" request is given its credentials by requestInterceptor; the spec's own
// fetch is not signed.
import { authorizationHeaders, setupCredentialsPanel } from './credentials.js';

const encoder = new TextEncoder();

function headerName(headers, name) {
  return Object.keys(headers).find((k) => k.toLowerCase() === name);
}

/**
 * The exact bytes the browser will send, and their Content-Type. A FormData is serialised here (a
 * Response gives its bytes and the multipart Content-Type with the boundary) so that the body hash
 * covers the body that is sent.
 */
async function bodyBytes(body, contentType) {
  if (body === undefined || body === null || body === '') return { bytes: undefined, contentType };
  if (typeof body === 'string') return { bytes: encoder.encode(body), contentType };
  if (body instanceof URLSearchParams) return { bytes: encoder.encode(body.toString()), contentType: contentType ?? 'application/x-www-form-urlencoded;charset=UTF-8' };
  if (body instanceof FormData) {
    const serialised = new Response(body);
    return { bytes: new Uint8Array(await serialised.arrayBuffer()), contentType: serialised.headers.get('content-type') };
  }
  if (body instanceof Blob) return { bytes: new Uint8Array(await body.arrayBuffer()), contentType: contentType ?? (body.type || undefined) };
  if (body instanceof ArrayBuffer) return { bytes: new Uint8Array(body), contentType };
  if (ArrayBuffer.isView(body)) return { bytes: new Uint8Array(body.buffer, body.byteOffset, body.byteLength), contentType };
  return { bytes: encoder.encode(String(body)), contentType };
}

async function signTryItOut(req) {
  if (req.loadSpec) return req;
  const url = new URL(req.url, location.href);
  if (url.origin !== location.origin) return req;
  req.headers ??= {};
  const typeKey = headerName(req.headers, 'content-type');
  let contentType = typeKey === undefined ? undefined : req.headers[typeKey];
  // A multipart Content-Type Swagger UI set without a boundary is replaced by the serialised body's.
  if (req.body instanceof FormData && typeKey !== undefined) {
    delete req.headers[typeKey];
    contentType = undefined;
  }
  const { bytes, contentType: sentType } = await bodyBytes(req.body, contentType);
  req.body = bytes;
  for (const k of Object.keys(req.headers)) if (k.toLowerCase() === 'content-type' || k.toLowerCase() === 'authorization') delete req.headers[k];
  if (sentType !== undefined && sentType !== null) {
    req.headers['Content-Type'] = sentType;
    // Swagger UI drops a multipart Content-Type after this interceptor (expecting fetch to add one for a
    // FormData); the body is bytes now, so the signed Content-Type is put back for the real fetch.
    if (/^multipart\//i.test(sentType)) {
      req.userFetch = (target, init) => fetch(target, { ...init, headers: { ...init.headers, 'Content-Type': sentType } });
    }
  }
  Object.assign(req.headers, await authorizationHeaders({ method: req.method, url, body: bytes, contentType: sentType ?? undefined }));
  return req;
}

await setupCredentialsPanel();
window.SwaggerUIBundle({
  url: '/openapi.json',
  dom_id: '#swagger-ui',
  presets: [window.SwaggerUIBundle.presets.apis],
  layout: 'BaseLayout',
  deepLinking: false,
  validatorUrl: null,
  defaultModelsExpandDepth: 0,
  displayRequestDuration: true,
  persistAuthorization: false,
  requestInterceptor: signTryItOut,
});
