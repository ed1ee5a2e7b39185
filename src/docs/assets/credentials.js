// The credentials panel of /docs and /playground, and the one place requests get their credentials.
// The secret key, API key or token is kept in this tab's sessionStorage and used only here: the secret
// key only as an HMAC key (signing.js), never sent; an API key or token only to this origin (the CSP's
// connect-src 'self' allows nothing else).
import { signRequest } from './signing.js';

const STORAGE_KEY = 'kernelgate.credentials';
/** OpenAPI security scheme name -> the panel's mode. */
const MODES = { BackendAI: 'keypair', ApiKey: 'apikey', Bearer: 'bearer' };

export function readCredentials() {
  try {
    const saved = JSON.parse(sessionStorage.getItem(STORAGE_KEY) ?? '{}');
    return saved !== null && typeof saved === 'object' ? saved : {};
  } catch {
    return {};
  }
}

function saveCredentials(credentials) {
  sessionStorage.setItem(STORAGE_KEY, JSON.stringify(credentials));
}

let infoPromise;
/** The API version to sign with (GET /) and the credential schemes the gateway accepts (/openapi.json). */
export function gatewayInfo() {
  infoPromise ??= (async () => {
    const [root, spec] = await Promise.all([fetch('/').then((r) => r.json()), fetch('/openapi.json').then((r) => r.json())]);
    const schemes = Object.keys(spec?.components?.securitySchemes ?? { BackendAI: {} })
      .map((name) => MODES[name])
      .filter(Boolean);
    return { apiVersion: String(root.version), schemes: schemes.length > 0 ? schemes : ['keypair'], spec };
  })();
  return infoPromise;
}

/** The request target as the browser sends it: path and query, still percent-encoded, no fragment. */
export function targetOf(url) {
  const rest = url.href.slice(url.origin.length);
  const hash = rest.indexOf('#');
  return hash === -1 ? rest : rest.slice(0, hash);
}

/** Whether the panel holds credentials for its chosen mode. */
export function hasCredentials() {
  const c = readCredentials();
  if (c.mode === 'apikey') return Boolean(c.apiKey);
  if (c.mode === 'bearer') return Boolean(c.token);
  return Boolean(c.accessKey && c.secretKey);
}

/**
 * Headers that authenticate one request with the saved credentials: a Backend.AI signature over the
 * exact body bytes, an x-api-key, or a bearer token. Empty when nothing is saved (the gateway then
 * answers 401, which the page shows).
 */
export async function authorizationHeaders({ method, url, body, contentType }) {
  const c = readCredentials();
  if (c.mode === 'apikey' && c.apiKey) return { 'x-api-key': c.apiKey };
  if (c.mode === 'bearer' && c.token) return { Authorization: `Bearer ${c.token}` };
  if ((c.mode ?? 'keypair') !== 'keypair' || !c.accessKey || !c.secretKey) return {};
  const { apiVersion } = await gatewayInfo();
  const signed = await signRequest({
    method,
    target: targetOf(url),
    host: url.host,
    accessKey: c.accessKey,
    secretKey: c.secretKey,
    apiVersion,
    body,
    contentType,
  });
  return signed.headers;
}

/** fetch() with credentials; `body` is bytes (Uint8Array) or a string, signed exactly as sent. */
export async function authorizedFetch(method, path, { body, contentType, headers = {} } = {}) {
  const url = new URL(path, location.href);
  const bytes = typeof body === 'string' ? new TextEncoder().encode(body) : body;
  const all = { ...headers };
  if (contentType !== undefined) all['Content-Type'] = contentType;
  Object.assign(all, await authorizationHeaders({ method, url, body: bytes, contentType }));
  return fetch(url, { method, headers: all, body: bytes, credentials: 'omit', cache: 'no-store' });
}

/** Wires the panel (the same markup on both pages) to sessionStorage. */
export async function setupCredentialsPanel() {
  const form = document.getElementById('credentials-form');
  const status = document.getElementById('credentials-status');
  const field = (id) => document.getElementById(id);
  const { schemes } = await gatewayInfo();
  for (const radio of form.querySelectorAll('input[name="mode"]')) {
    const offered = schemes.includes(radio.value);
    radio.closest('.mode-choice').hidden = !offered;
    radio.disabled = !offered;
  }
  field('credentials-modes').hidden = schemes.length < 2;
  const saved = readCredentials();
  const mode = schemes.includes(saved.mode) ? saved.mode : schemes[0];
  form.querySelector(`input[name="mode"][value="${mode}"]`).checked = true;
  field('access-key').value = saved.accessKey ?? '';
  field('secret-key').value = saved.secretKey ?? '';
  field('api-key').value = saved.apiKey ?? '';
  field('bearer-token').value = saved.token ?? '';
  const showMode = () => {
    const current = form.querySelector('input[name="mode"]:checked').value;
    for (const group of form.querySelectorAll('[data-mode]')) group.hidden = group.dataset.mode !== current;
  };
  const describe = () => {
    const c = readCredentials();
    status.textContent =
      c.mode === 'apikey' && c.apiKey ? 'Requests carry the saved API key.'
      : c.mode === 'bearer' && c.token ? 'Requests carry the saved bearer token.'
      : c.accessKey && c.secretKey ? `Requests are signed as ${c.accessKey}.`
      : 'No credentials saved: requests go unsigned (and signed routes answer 401).';
  };
  showMode();
  describe();
  form.addEventListener('change', (e) => {
    if (e.target.name === 'mode') showMode();
  });
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    saveCredentials({
      mode: form.querySelector('input[name="mode"]:checked').value,
      accessKey: field('access-key').value.trim(),
      secretKey: field('secret-key').value.trim(),
      apiKey: field('api-key').value.trim(),
      token: field('bearer-token').value.trim(),
    });
    describe();
    form.dispatchEvent(new CustomEvent('credentials-saved', { bubbles: true }));
  });
  field('credentials-forget').addEventListener('click', () => {
    sessionStorage.removeItem(STORAGE_KEY);
    for (const id of ['access-key', 'secret-key', 'api-key', 'bearer-token']) field(id).value = '';
    describe();
  });
  // The button ships disabled: until the submit handler above is wired (after GET / answered), a click or an
  // Enter would submit the form natively, a GET that puts the secret key in the page's URL.
  field('credentials-save').disabled = false;
}
