/**
 * CTC greedy decoding (PaddleOCR's CTCLabelDecode): arg-max per time step, drop blanks (class 0) and
 * repeats of the previous step's class; confidence is the mean arg-max probability of the kept steps.
 *
 * One addition: word spaces. The Chinese PP-OCRv4 recognizer is weak on ' ': between two words the space
 * class often loses the arg-max to the blank on small, blurred or JPEG-damaged text ("Invoicelibrary much
 * totalmost"). Its probability there stays far above its level inside words (first measured on 72 rendered
 * lines: at most 0.014 between the letters of a word, 0.3-0.75 between words), so a space is emitted between
 * two characters when the space class reached `spaceThreshold` in the steps between. 0.05 (it was 0.15) is
 * what bench/ocr-accuracy.ts chose: it restored most lost spaces on the small, mixed and photo classes and
 * added no spurious ones to the clean pages.
 *
 * The arg-max pass (O(N·T·C), C = 6625) runs in the model's worker thread (ctcArgmax); decoding the
 * reduced steps (O(N·T)) runs on the caller's thread.
 */
import type { ArgmaxSteps } from '../runners/session-protocol.js';

export interface Decoded {
  text: string;
  confidence: number;
  /** Mean probability of the characters the arg-max emitted (spaces added by the gap rule left out). */
  charConfidence: number;
}

export interface CtcOptions {
  /** Class index of ' ' (the last class with PaddleOCR's use_space_char); -1 disables the space rule. */
  spaceIndex: number;
  spaceThreshold: number;
}

/** Per-step arg-max over the last axis of `[N, T, C]`, also recording the probability of class `watch`. */
export function ctcArgmax(data: Float32Array, dims: readonly number[], watch: number): ArgmaxSteps {
  const [batch = 1, steps = 1, classes = 1] = dims;
  const rows = batch * steps;
  const index = new Int32Array(rows);
  const prob = new Float32Array(rows);
  const watched = new Float32Array(rows);
  for (let r = 0; r < rows; r++) {
    const base = r * classes;
    let best = 0;
    let bestP = data[base]!;
    for (let c = 1; c < classes; c++) {
      const p = data[base + c]!;
      if (p > bestP) {
        bestP = p;
        best = c;
      }
    }
    index[r] = best;
    prob[r] = bestP;
    watched[r] = watch >= 0 && watch < classes ? data[base + watch]! : 0;
  }
  return { batch, steps, index, prob, watched };
}

/** Decode arg-max steps (whose `watched` class is the space) into one string per batch row. */
export function ctcDecode(s: ArgmaxSteps, alphabet: readonly string[], opts: CtcOptions): Decoded[] {
  const sp = alphabet[opts.spaceIndex] === ' ' ? opts.spaceIndex : -1;
  const out: Decoded[] = [];
  for (let n = 0; n < s.batch; n++) {
    let text = '';
    let sum = 0;
    let kept = 0;
    let charSum = 0, charKept = 0;
    let prev = -1;
    let gapSpace = 0; // highest space probability since the last emitted non-space character
    for (let t = 0; t < s.steps; t++) {
      const r = n * s.steps + t;
      const best = s.index[r]!;
      if (best !== 0 && best !== prev) {
        if (best !== sp && sp >= 0 && text !== '' && !text.endsWith(' ') && gapSpace >= opts.spaceThreshold) {
          text += ' ';
          sum += gapSpace;
          kept++;
        }
        text += alphabet[best] ?? '';
        sum += s.prob[r]!;
        kept++;
        charSum += s.prob[r]!;
        charKept++;
      }
      if (sp >= 0) gapSpace = best === 0 || best === sp ? Math.max(gapSpace, s.watched[r]!) : 0;
      prev = best;
    }
    out.push({ text, confidence: kept > 0 ? sum / kept : 0, charConfidence: charKept > 0 ? charSum / charKept : 0 });
  }
  return out;
}

export const DEFAULT_CTC_OPTIONS = (alphabet: readonly string[]): CtcOptions => ({ spaceIndex: alphabet.length - 1, spaceThreshold: 0.05 });

