// Draws a model's result over its image: OCR lines (a `box` polygon and `text`), detections and faces
// (x_min/y_min/x_max/y_max with `label` and `confidence`, face `landmarks`). Results without geometry
// (classification) are listed by the page, not drawn.

const PALETTE = ['#e6194b', '#3cb44b', '#4363d8', '#f58231', '#911eb4', '#008080', '#f032e6', '#9a6324', '#800000', '#000075'];

function colourOf(label) {
  let h = 0;
  for (let i = 0; i < label.length; i++) h = (h * 31 + label.charCodeAt(i)) >>> 0;
  return PALETTE[h % PALETTE.length];
}

const isNumber = (v) => typeof v === 'number' && Number.isFinite(v);
const isPoint = (p) => Array.isArray(p) && p.length >= 2 && isNumber(p[0]) && isNumber(p[1]);

/**
 * The drawable shapes of a result, whatever its kernel: `{ points, label, confidence, landmarks }`
 * (points: a polygon, four corners for a rectangle). Items without geometry are left out.
 */
export function shapesOf(result) {
  const predictions = Array.isArray(result?.predictions) ? result.predictions : [];
  const shapes = [];
  for (const p of predictions) {
    if (p === null || typeof p !== 'object') continue;
    const text = typeof p.text === 'string' ? p.text : typeof p.label === 'string' ? p.label : '';
    const confidence = isNumber(p.confidence) ? p.confidence : undefined;
    let points;
    if (Array.isArray(p.box) && p.box.length >= 3 && p.box.every(isPoint)) points = p.box.map(([x, y]) => [x, y]);
    else if ([p.x_min, p.y_min, p.x_max, p.y_max].every(isNumber)) {
      points = [[p.x_min, p.y_min], [p.x_max, p.y_min], [p.x_max, p.y_max], [p.x_min, p.y_max]];
    }
    if (points === undefined) continue;
    const landmarks = Array.isArray(p.landmarks) ? p.landmarks.filter(isPoint) : [];
    shapes.push({ points, label: text || (landmarks.length > 0 ? 'face' : ''), confidence, landmarks });
  }
  return shapes;
}

/** `0.987` -> `98.7 %`. */
export const percent = (c) => `${(c * 100).toFixed(1)} %`;

/** Draws `image` (an ImageBitmap) at its own size and the result's shapes over it. */
export function drawResult(canvas, image, result) {
  canvas.width = image.width;
  canvas.height = image.height;
  const ctx = canvas.getContext('2d');
  ctx.drawImage(image, 0, 0);
  const shapes = shapesOf(result);
  // Lines and labels scale with the image, so they read the same on a phone photo and a screenshot.
  const scale = Math.max(image.width, image.height) / 800;
  const line = Math.max(2, Math.round(2 * scale));
  const font = Math.max(12, Math.round(14 * scale));
  ctx.lineJoin = 'round';
  ctx.font = `${font}px system-ui, sans-serif`;
  ctx.textBaseline = 'top';
  for (const s of shapes) {
    const colour = colourOf(s.label || 'object');
    ctx.strokeStyle = colour;
    ctx.lineWidth = line;
    ctx.beginPath();
    s.points.forEach(([x, y], i) => (i === 0 ? ctx.moveTo(x, y) : ctx.lineTo(x, y)));
    ctx.closePath();
    ctx.stroke();
    ctx.fillStyle = colour;
    for (const [x, y] of s.landmarks) {
      ctx.beginPath();
      ctx.arc(x, y, line * 1.5, 0, Math.PI * 2);
      ctx.fill();
    }
    const caption = [s.label, s.confidence === undefined ? '' : percent(s.confidence)].filter(Boolean).join(' ');
    if (caption === '') continue;
    // The caption sits on the shape's top edge, above it when there is room, inside it when not.
    const left = Math.min(...s.points.map((p) => p[0]));
    const top = Math.min(...s.points.map((p) => p[1]));
    const pad = Math.round(font / 4);
    const w = ctx.measureText(caption).width + 2 * pad;
    const h = font + 2 * pad;
    const y = top - h >= 0 ? top - h : top;
    const x = Math.max(0, Math.min(left, canvas.width - w));
    ctx.fillStyle = colour;
    ctx.fillRect(x, y, w, h);
    ctx.fillStyle = '#ffffff';
    ctx.fillText(caption, x + pad, y + pad);
  }
  return shapes;
}
