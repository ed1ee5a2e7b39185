/**
 * Tiling for large frames: a grid of overlapping squares over the image, each of which the back model sees at
 * a larger scale than the whole-image letterbox gives it, so that faces of 30-100 px in a 1920x1080 camera
 * frame (5 px once the whole frame is shrunk into 256) reach the model's range (README "Face kernel").
 *
 * All in the pixels of one decode at the tiles' scale (the image shrunk so that one tile is the model's input
 * side). Neighbouring tiles overlap by at least the largest face a tile answers for, and each tile keeps only
 * the candidates centred in its own part of the overlap (split at the middle): a face narrower than the overlap
 * is then whole in the tile that keeps it, and no two tiles report it.
 */

export interface Rect {
  x: number;
  y: number;
  width: number;
  height: number;
}

export interface TileGrid {
  /** The decode every tile is cut from: the upright image scaled by `input / side`. */
  width: number;
  height: number;
  /** Decoded pixels per image pixel, per axis (the decode's sizes are rounded). */
  scaleX: number;
  scaleY: number;
  tiles: Array<{ rect: Rect; core: Rect }>;
}

/** Start positions of tiles of `tile` px over `length` px, overlapping by at least `overlap`, spread evenly. */
function starts(length: number, tile: number, overlap: number): number[] {
  if (length <= tile) return [0];
  const n = Math.ceil((length - overlap) / (tile - overlap));
  return Array.from({ length: n }, (_, i) => Math.round((i * (length - tile)) / (n - 1)));
}

/** Each tile's share along one axis: from the middle of the overlap with the previous tile to that with the next. */
function cores(pos: number[], tile: number, length: number): Array<[number, number]> {
  return pos.map((p, i) => [i === 0 ? 0 : (pos[i - 1]! + tile + p) / 2, i === pos.length - 1 ? length : (p + tile + pos[i + 1]!) / 2]);
}

/**
 * The grid for an upright image of `img`, or undefined when its long side is at most `minLongSide` (such an image
 * costs nothing extra). `side`: a tile's side in image pixels; `input`: the model's input side; `overlap`: the
 * share of a tile that neighbours overlap by (the largest face a tile answers for).
 */
export function tileGrid(img: { width: number; height: number }, side: number, input: number, overlap: number, minLongSide: number): TileGrid | undefined {
  if (Math.max(img.width, img.height) <= minLongSide || side <= 0) return undefined;
  const width = Math.max(1, Math.round((img.width * input) / side));
  const height = Math.max(1, Math.round((img.height * input) / side));
  const o = Math.ceil(overlap * input);
  const xs = starts(width, input, o);
  const ys = starts(height, input, o);
  const cx = cores(xs, input, width);
  const cy = cores(ys, input, height);
  const tiles: TileGrid['tiles'] = [];
  ys.forEach((y, j) =>
    xs.forEach((x, i) => {
      const rect = { x, y, width: Math.min(input, width - x), height: Math.min(input, height - y) };
      const core = { x: cx[i]![0], y: cy[j]![0], width: cx[i]![1] - cx[i]![0], height: cy[j]![1] - cy[j]![0] };
      tiles.push({ rect, core });
    }),
  );
  return { width, height, scaleX: width / img.width, scaleY: height / img.height, tiles };
}

/** Whether a point (decoded pixels) lies in a tile's share. */
export function inCore(core: Rect, x: number, y: number): boolean {
  return x >= core.x && x < core.x + core.width && y >= core.y && y < core.y + core.height;
}
