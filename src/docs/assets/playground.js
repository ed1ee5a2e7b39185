// The playground: pick a model the keypair may use, drop or pick an image, run it in a session of this
// page's own (created once, reused), and see the result drawn over the image, listed and as raw JSON.
import { authorizedFetch, hasCredentials, setupCredentialsPanel } from './credentials.js';
import { drawResult, percent, shapesOf } from './draw.js';

const $ = (id) => document.getElementById(id);
const modelSelect = $('model');
const fileInput = $('image-file');
const dropZone = $('drop-zone');
const status = $('run-status');
const canvas = $('canvas');
/** model name -> session name, once created (or found) on the gateway. */
const sessions = new Map();
let chosenFile;

async function problemText(res) {
  const text = await res.text();
  try {
    const doc = JSON.parse(text);
    return { doc, message: `${res.status}: ${doc.detail ?? doc.title ?? text}` };
  } catch {
    return { doc: text, message: `${res.status}: ${text.slice(0, 200)}` };
  }
}

/** `<https://…/models?cursor=x>; rel="next"` -> that URL (collections page, RFC 8288). */
function nextLink(res) {
  const link = res.headers.get('link') ?? '';
  for (const part of link.split(',')) {
    const m = /^\s*<([^>]*)>\s*;(.*)$/.exec(part);
    if (m && /(^|;)\s*rel="?next"?\s*(;|$)/i.test(m[2])) return m[1];
  }
  return undefined;
}

async function loadModels() {
  modelSelect.replaceChildren();
  if (!hasCredentials()) {
    status.textContent = 'Enter credentials above to list the models you may use.';
    return;
  }
  status.textContent = 'Loading models…';
  const models = [];
  let path = '/models';
  for (let page = 0; path !== undefined && page < 20; page++) {
    const res = await authorizedFetch('GET', path);
    if (!res.ok) {
      status.textContent = `Could not list models: ${(await problemText(res)).message}`;
      return;
    }
    models.push(...((await res.json()).models ?? []));
    const next = nextLink(res);
    path = next === undefined ? undefined : new URL(next, location.href).href.slice(location.origin.length);
  }
  const seen = new Set();
  for (const m of models) {
    if (typeof m?.name !== 'string' || seen.has(m.name)) continue;
    seen.add(m.name);
    const option = document.createElement('option');
    option.value = m.name;
    option.textContent = `${m.name} — ${m.task ?? 'model'}${m.builtin ? ' (built in)' : ''}`;
    modelSelect.append(option);
  }
  status.textContent = `${seen.size} model${seen.size === 1 ? '' : 's'} available.`;
}

/** This page's session for a model: `pg-` + the name (cut to fit) + a hash, so two models never share one. */
async function sessionName(model) {
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(model)));
  const tag = Array.from(digest.slice(0, 4), (b) => b.toString(16).padStart(2, '0')).join('');
  return `pg-${model.replace(/[^A-Za-z0-9._-]/g, '-').slice(0, 52)}-${tag}`;
}

async function ensureSession(model) {
  if (sessions.has(model)) return sessions.get(model);
  const name = await sessionName(model);
  const res = await authorizedFetch('POST', '/session', { body: JSON.stringify({ name, image: model }), contentType: 'application/json' });
  if (!res.ok) throw Object.assign(new Error('session'), { problem: await problemText(res) });
  sessions.set(model, name);
  return name;
}

function showTiming(entries) {
  $('timing').replaceChildren(
    ...entries.flatMap(([term, value]) => {
      const dt = document.createElement('dt');
      dt.textContent = term;
      const dd = document.createElement('dd');
      dd.textContent = value;
      return [dt, dd];
    }),
  );
}

function listPredictions(result) {
  const items = Array.isArray(result?.predictions) ? result.predictions : result && typeof result.label === 'string' ? [result] : [];
  $('predictions').replaceChildren(
    ...items.slice(0, 200).map((p) => {
      const li = document.createElement('li');
      const name = p.text ?? p.label ?? 'face';
      const where = [p.x_min, p.y_min, p.x_max, p.y_max].every((v) => typeof v === 'number') ? ` at (${p.x_min}, ${p.y_min})–(${p.x_max}, ${p.y_max})` : '';
      li.textContent = `${name}${typeof p.confidence === 'number' ? ` — ${percent(p.confidence)}` : ''}${where}`;
      return li;
    }),
  );
}

async function run(event) {
  event.preventDefault();
  const model = modelSelect.value;
  if (!model) {
    status.textContent = 'Choose a model first (save credentials, then Reload models).';
    return;
  }
  if (chosenFile === undefined) {
    status.textContent = 'Choose or drop an image first.';
    return;
  }
  $('run').disabled = true;
  status.textContent = `Running ${model}…`;
  try {
    const bytes = new Uint8Array(await chosenFile.arrayBuffer());
    let name = await ensureSession(model);
    const started = performance.now();
    const infer = () => authorizedFetch('POST', `/session/${encodeURIComponent(name)}/infer`, { body: bytes, contentType: chosenFile.type || 'application/octet-stream' });
    let res = await infer();
    if (res.status === 404) {
      // The session expired (idle timeout): make it again, once.
      sessions.delete(model);
      name = await ensureSession(model);
      res = await infer();
    }
    const elapsed = performance.now() - started;
    if (!res.ok) throw Object.assign(new Error('infer'), { problem: await problemText(res) });
    const result = await res.json();
    // The gateway reads formats a browser may not (TIFF): then the result is listed, not drawn.
    const image = await createImageBitmap(chosenFile).catch(() => undefined);
    const shapes = image === undefined ? [] : drawResult(canvas, image, result);
    listPredictions(result);
    $('raw').textContent = JSON.stringify(result, null, 2);
    const count = Array.isArray(result.predictions) ? result.predictions.length : 0;
    const summary =
      `${model}: ${count} prediction${count === 1 ? '' : 's'}${shapes.length > 0 ? `, ${shapes.length} drawn` : ''}.` +
      (image === undefined ? ' This browser cannot show the image, so nothing is drawn.' : '');
    $('summary').textContent = summary;
    canvas.setAttribute('aria-label', `${chosenFile.name} with ${summary} ${shapes.map((s) => s.label).filter(Boolean).join('; ')}`.slice(0, 1000));
    showTiming([
      ['Round trip', `${elapsed.toFixed(0)} ms`],
      ...(typeof result.duration_ms === 'number' ? [['Model', `${result.duration_ms.toFixed(1)} ms`]] : []),
      ...(typeof result.provider === 'string' ? [['Provider', result.provider]] : []),
    ]);
    status.textContent = `Done in ${elapsed.toFixed(0)} ms.`;
    image?.close();
  } catch (error) {
    const problem = error.problem;
    status.textContent = problem ? `The gateway answered ${problem.message}` : `Failed: ${error.message}`;
    $('raw').textContent = problem ? (typeof problem.doc === 'string' ? problem.doc : JSON.stringify(problem.doc, null, 2)) : '';
  } finally {
    $('run').disabled = false;
  }
}

function choose(file) {
  chosenFile = file;
  $('file-name').textContent = file ? `${file.name} (${Math.ceil(file.size / 1024)} KiB)` : '';
}

fileInput.addEventListener('change', () => choose(fileInput.files[0]));
for (const type of ['dragenter', 'dragover']) {
  dropZone.addEventListener(type, (e) => {
    e.preventDefault();
    dropZone.classList.add('dragging');
  });
}
for (const type of ['dragleave', 'drop']) dropZone.addEventListener(type, () => dropZone.classList.remove('dragging'));
dropZone.addEventListener('drop', (e) => {
  e.preventDefault();
  const file = e.dataTransfer?.files?.[0];
  if (file) choose(file);
});
$('run-form').addEventListener('submit', run);
$('reload-models').addEventListener('click', loadModels);
document.addEventListener('credentials-saved', () => {
  sessions.clear();
  loadModels();
});

try {
  await setupCredentialsPanel();
  await loadModels();
} catch (error) {
  status.textContent = `The playground could not start: ${error.message}`;
}
