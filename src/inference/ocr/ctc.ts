/**
 * CTC greedy decoding (PaddleOCR's CTCLabelDecode): arg-max per time step, drop blanks (class 0) and
 * repeats of the previous step's class; confidence is the mean arg-max probability of the kept steps.
 */
export interface Decoded {
  text: string;
  confidence: number;
}

/**
 * `probs` holds `[batch, steps, classes]` softmax outputs; returns one decoded string per batch row.
 * One pass over the tensor: O(batch × steps × classes) with no allocation per step.
 */
export function ctcGreedyDecode(probs: Float32Array, batch: number, steps: number, classes: number, alphabet: readonly string[]): Decoded[] {
  const out: Decoded[] = [];
  for (let n = 0; n < batch; n++) {
    let text = '';
    let sum = 0;
    let kept = 0;
    let prev = -1;
    for (let t = 0; t < steps; t++) {
      const base = (n * steps + t) * classes;
      let best = 0;
      let bestP = probs[base]!;
      for (let c = 1; c < classes; c++) {
        const p = probs[base + c]!;
        if (p > bestP) {
          bestP = p;
          best = c;
        }
      }
      if (best !== 0 && best !== prev) {
        text += alphabet[best] ?? '';
        sum += bestP;
        kept++;
      }
      prev = best;
    }
    out.push({ text, confidence: kept > 0 ? sum / kept : 0 });
  }
  return out;
}
