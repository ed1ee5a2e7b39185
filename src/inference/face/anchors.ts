/**
 * BlazeFace's SSD anchors, generated the way MediaPipe's SsdAnchorsCalculator does for the face detection
 * models: consecutive layers with the same stride share one grid, each layer adds two anchors per cell
 * (aspect ratio 1 plus the interpolated one), anchor centres at (cell + 0.5) / grid, fixed anchor size
 * (the regressors are absolute sizes, so anchors carry only a centre).
 *
 * front (128x128): strides 8, 16, 16, 16 → 16x16 cells x 2 + 8x8 cells x 6 = 896 anchors.
 * back (256x256): strides 16, 32, 32, 32 → the same 16x16 x 2 + 8x8 x 6 grids, so the same 896 centres.
 * keijiro's decoder (Shaders/Postprocess1*.hlsl in the npm package) walks exactly these two grids, cell by
 * cell in row-major order with the anchors of a cell next to each other: the outputs' order.
 */
export interface AnchorSpec {
  /** Input side in pixels (the models are square). */
  inputSize: number;
  /** One stride per SSD layer (MediaPipe's `strides`). */
  strides: readonly number[];
  /** Anchors each layer adds per cell (MediaPipe: one per aspect ratio + the interpolated one = 2). */
  anchorsPerLayer: number;
}

export const FRONT_ANCHORS: AnchorSpec = { inputSize: 128, strides: [8, 16, 16, 16], anchorsPerLayer: 2 };
export const BACK_ANCHORS: AnchorSpec = { inputSize: 256, strides: [16, 32, 32, 32], anchorsPerLayer: 2 };

/** Anchor centres as `[x0, y0, x1, y1, ...]`, normalized to the input square (0..1). */
export function ssdAnchorCentres(spec: AnchorSpec): Float32Array {
  const out: number[] = [];
  let layer = 0;
  while (layer < spec.strides.length) {
    const stride = spec.strides[layer]!;
    let perCell = 0;
    // Layers with the same stride share a grid: their anchors sit together in each cell.
    while (layer < spec.strides.length && spec.strides[layer] === stride) {
      perCell += spec.anchorsPerLayer;
      layer++;
    }
    const cells = Math.ceil(spec.inputSize / stride);
    for (let y = 0; y < cells; y++) {
      for (let x = 0; x < cells; x++) {
        for (let a = 0; a < perCell; a++) out.push((x + 0.5) / cells, (y + 0.5) / cells);
      }
    }
  }
  return Float32Array.from(out);
}
