// Swagger UI on /openapi.json (the initializer, a file of its own: the page's CSP allows no inline
// script). Every "Try it out" request is given its credentials by requestInterceptor; the spec's own
// fetch is not signed.
import { authorizationHeaders, setupCredentialsPanel } from './credentials.js';

const encoder = new TextEncoder();

function headerName(headers, name) {
  return Object.keys(headers).find((k) => k.toLowerCase() === name);
}

/**
 * The exact bytes the browser will send (`bytes`, hashed for the signature), what to hand fetch (`send`:
 * the same bytes) and their Content-Type. A FormData is serialised here (a Response gives its bytes and
 * the multipart Content-Type with its boundary), so the signed body is the sent body. A string stays a
 * string (fetch sends it as UTF-8, the bytes hashed); binary bodies go as a File, which Swagger UI's
 * curl line shows as `--data-binary @…` rather than as a list of byte values.
 */
async function bodyBytes(body, contentType) {
  if (body === undefined || body === null || body === '') return { bytes: undefined, send: undefined, contentType };
  if (typeof body === 'string') return { bytes: encoder.encode(body), send: body, contentType };
  if (body instanceof URLSearchParams) {
    const text = body.toString();
    return { bytes: encoder.encode(text), send: text, contentType: contentType ?? 'application/x-www-form-urlencoded;charset=UTF-8' };
  }
  if (body instanceof FormData) {
    const serialised = new Response(body);
    const bytes = new Uint8Array(await serialised.arrayBuffer());
    return { bytes, send: new File([bytes], 'multipart-body'), contentType: serialised.headers.get('content-type') };
  }
  if (body instanceof Blob) return { bytes: new Uint8Array(await body.arrayBuffer()), send: body, contentType: contentType ?? (body.type || undefined) };
  if (body instanceof ArrayBuffer || ArrayBuffer.isView(body)) {
    const bytes = body instanceof ArrayBuffer ? new Uint8Array(body) : new Uint8Array(body.buffer, body.byteOffset, body.byteLength);
    return { bytes, send: new File([bytes], 'body'), contentType };
  }
  const text = String(body);
  return { bytes: encoder.encode(text), send: text, contentType };
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
  const { bytes, send, contentType: sentType } = await bodyBytes(req.body, contentType);
  req.body = send;
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

// The reference loads even when the panel cannot (the status line then says why).
await setupCredentialsPanel().catch((error) => {
  document.getElementById('credentials-status').textContent = `The credentials panel could not start: ${error.message}`;
});
window.SwaggerUIBundle({
  url: '/openapi.json',
  dom_id: '#swagger-ui',
  presets: [window.SwaggerUIBundle.presets.apis],
  layout: 'BaseLayout',
  deepLinking: false,
  validatorUrl: null,
  defaultModelsExpandDepth: -1,
  displayRequestDuration: true,
  persistAuthorization: false,
  requestInterceptor: signTryItOut,
});
