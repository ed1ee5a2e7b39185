/**
 * The recognizer's reduced outputs (src/inference/onnx-augment.ts): the augmented PP-OCRv4 recognizer,
 * run by onnxruntime-node on rendered text-line crops, gives exactly ctcArgmax's index, probability and
 * watched-class probability of its own full output; small hand-built models at opset 9 (ReduceMax axes
 * attribute) and 18 (axes input) too; the rest of the file is left byte for byte; malformed bytes are
 * refused with OnnxAugmentError only (fast-check, time-bounded).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import * as ort from 'onnxruntime-node';
import { graphSignature } from '../src/inference/onnx-inspect.js';
import { appendArgmaxOutputs, argmaxWatchOf, ARGMAX_OUTPUT, MAXPROB_OUTPUT, OnnxAugmentError } from '../src/inference/onnx-augment.js';
import { ctcArgmax, ctcDecode, DEFAULT_CTC_OPTIONS } from '../src/inference/ocr/ctc.js';
import { loadDictionary, ocrModelPaths } from '../src/inference/ocr/models.js';
import { DT, model } from './helpers/onnx.js';
import { cropBatch, lineCrop } from './helpers/rec-crops.js';

/** The reduced outputs of one run compared with ctcArgmax of the full output of the same run. */
function assertSameReduction(outs: ort.InferenceSession.OnnxValueMapType, full: string, watch: number): void {
  const probs = outs[full]!;
  const want = ctcArgmax(probs.data as Float32Array, [...probs.dims], watch);
  assert.deepEqual([...outs[ARGMAX_OUTPUT]!.dims], [want.batch, want.steps]);
  assert.equal(outs[ARGMAX_OUTPUT]!.type, 'int64');
  assert.deepEqual(Array.from(outs[ARGMAX_OUTPUT]!.data as BigInt64Array, Number), [...want.index]);
  assert.deepEqual([...(outs[MAXPROB_OUTPUT]!.data as Float32Array)], [...want.prob]);
  assert.deepEqual([...(outs[`kg_watch_${watch}`]!.data as Float32Array)], [...want.watched]);
}

/** [N, T, C] = Softmax(input) of a tiny graph at the given opset. */
const softmaxModel = (opset: number) =>
  model({ nodes: [{ op: 'Softmax', inputs: ['x'], outputs: ['p'], attrs: [{ name: 'axis', i: 2 }] }], inputs: [{ name: 'x', type: DT.FLOAT, dims: ['n', 't', 7] }], outputs: [{ name: 'p', type: DT.FLOAT, dims: ['n', 't', 7] }] }, opset);

describe('onnx-augment: reduced recognizer outputs', () => {
  it('the augmented PP-OCRv4 recognizer gives ctcArgmax of its full output on real line crops', async () => {
    const paths = ocrModelPaths();
    const original = readFileSync(paths.recognition);
    const alphabet = await loadDictionary(paths.dictionary);
    const ctc = DEFAULT_CTC_OPTIONS(alphabet);
    const augmented = appendArgmaxOutputs(original, ctc.spaceIndex);
    // Only the graph's length prefix and the appended tail differ; the weights are not re-encoded.
    assert.ok(augmented.length - original.length < 1024, `${augmented.length - original.length} bytes added`);
    const sig = graphSignature(augmented);
    assert.deepEqual(sig.outputs.map((o) => [o.name, o.elemType, o.shape]), [
      ['softmax_11.tmp_0', 1, [-1, -1, 6625]],
      ['kg_argmax', 7, [-1, -1]],
      ['kg_maxprob', 1, [-1, -1]],
      [`kg_watch_${ctc.spaceIndex}`, 1, [-1, -1]],
    ]);
    const session = await ort.InferenceSession.create(augmented, { executionProviders: ['cpu'], intraOpNumThreads: 1 });
    try {
      assert.deepEqual(session.outputNames.slice(1), ['kg_argmax', 'kg_maxprob', `kg_watch_${ctc.spaceIndex}`]);
      const lines = ['Invoice 2026 total 431.50', 'Ship to Alice Example', 'Rate limits live in Redis'];
      const crops = await Promise.all(lines.map((t, i) => lineCrop(t, 28 + 6 * i)));
      // One line at a time, then all three in one zero-padded batch (as the kernel batches them).
      for (const c of crops) {
        const outs = await session.run({ x: new ort.Tensor('float32', c.data, [1, 3, 48, c.width]) });
        assertSameReduction(outs, 'softmax_11.tmp_0', ctc.spaceIndex);
      }
      const batch = cropBatch(crops);
      const outs = await session.run({ x: new ort.Tensor('float32', batch.data, batch.dims) });
      assertSameReduction(outs, 'softmax_11.tmp_0', ctc.spaceIndex);
      // They are real crops: the reduced outputs read as the rendered text.
      const steps = { batch: crops.length, steps: outs.kg_argmax!.dims[1]!, index: Int32Array.from(outs.kg_argmax!.data as BigInt64Array, Number), prob: outs.kg_maxprob!.data as Float32Array, watched: outs[`kg_watch_${ctc.spaceIndex}`]!.data as Float32Array };
      assert.deepEqual(ctcDecode(steps, alphabet, ctc).map((d) => d.text), lines);
    } finally {
      await session.release();
    }
  });

  it('opset 9 (ReduceMax axes attribute) and 18 (axes input), ties included', async () => {
    for (const opset of [9, 13, 18]) {
      const aug = appendArgmaxOutputs(softmaxModel(opset), 3);
      const session = await ort.InferenceSession.create(aug, { executionProviders: ['cpu'], intraOpNumThreads: 1 });
      try {
        // Row 0 all equal (a tie: the first index wins, as in ctcArgmax); the others varied.
        const x = Float32Array.from({ length: 2 * 5 * 7 }, (_, i) => (i < 7 ? 0 : Math.sin(i * 1.7) * 4));
        assertSameReduction(await session.run({ x: new ort.Tensor('float32', x, [2, 5, 7]) }), 'p', 3);
      } finally {
        await session.release();
      }
    }
  });

  it('refuses models it cannot reduce, and the class metadata names the watched class', () => {
    const m = softmaxModel(13);
    assert.throws(() => appendArgmaxOutputs(m, 7), /outside the output's 7 classes/);
    assert.throws(() => appendArgmaxOutputs(m, -1), OnnxAugmentError);
    assert.throws(() => appendArgmaxOutputs(appendArgmaxOutputs(m, 2), 2), /already has a value named kg_argmax/);
    const rank2 = model({ nodes: [{ op: 'Identity', inputs: ['x'], outputs: ['y'] }], inputs: [{ name: 'x', type: DT.FLOAT, dims: [2, 3] }], outputs: [{ name: 'y', type: DT.FLOAT, dims: [2, 3] }] });
    assert.throws(() => appendArgmaxOutputs(rank2, 0), /not of rank 3/);
    const ints = model({ nodes: [{ op: 'Identity', inputs: ['x'], outputs: ['y'] }], inputs: [{ name: 'x', type: DT.INT64, dims: [1, 2, 3] }], outputs: [{ name: 'y', type: DT.INT64, dims: [1, 2, 3] }] });
    assert.throws(() => appendArgmaxOutputs(ints, 0), /not FLOAT/);
    assert.throws(() => appendArgmaxOutputs(Buffer.concat([m, m.subarray(m.indexOf(0x3a))]), 0), OnnxAugmentError);
    assert.equal(m[0], 0x08); // ir_version first: IR 3 is refused (initializers had to be graph inputs too)
    assert.throws(() => appendArgmaxOutputs(Buffer.concat([Buffer.from([0x08, 3]), m.subarray(2)]), 0), /IR version 3/);

    const outputs = [{ name: 'p', datatype: 'FP32' }, { name: 'kg_argmax', datatype: 'INT64' }, { name: 'kg_maxprob', datatype: 'FP32' }, { name: 'kg_watch_6624', datatype: 'FP32' }];
    assert.equal(argmaxWatchOf(outputs), 6624);
    assert.equal(argmaxWatchOf(outputs.slice(0, 3)), undefined);
    assert.equal(argmaxWatchOf(outputs.map((o) => (o.name === 'kg_argmax' ? { ...o, datatype: 'FP32' } : o))), undefined);
  });

  it('malformed bytes: OnnxAugmentError or a model whose untouched parts are intact (fuzz, time-bounded)', () => {
    const valid = softmaxModel(13);
    const check = (bytes: Uint8Array) => {
      let out: Uint8Array;
      try {
        out = appendArgmaxOutputs(bytes, 2);
      } catch (error) {
        assert.ok(error instanceof OnnxAugmentError, `not an OnnxAugmentError: ${String(error)}`);
        return;
      }
      // Accepted: the result is still walkable (a second edit sees the first's names), and where the input
      // reads as a model, the result reads as the same model with the three outputs added last.
      assert.throws(() => appendArgmaxOutputs(out, 1), /already has a value named kg_argmax/);
      let before: ReturnType<typeof graphSignature> | undefined;
      try {
        before = graphSignature(bytes);
      } catch {
        return; // damaged deeper than the editor reads (ONNX Runtime refuses such a file); passed on as it was
      }
      const after = graphSignature(out);
      assert.deepEqual(after.inputs, before.inputs);
      assert.deepEqual(after.outputs.slice(0, -3), before.outputs);
      assert.deepEqual(after.outputs.slice(-3).map((o) => o.name), ['kg_argmax', 'kg_maxprob', 'kg_watch_2']);
    };
    const mutated = fc.tuple(fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 6 }), fc.nat(), fc.boolean()).map(([edits, cut, truncate]) => {
      const b = Buffer.from(valid);
      for (const [at, v] of edits) b[at % b.length] = v;
      return truncate ? b.subarray(0, cut % b.length) : b;
    });
    const FC = { numRuns: 3000, interruptAfterTimeLimit: 8_000, markInterruptAsFailure: false } as const;
    fc.assert(fc.property(mutated, check), FC);
    fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), check), FC);
  });
});
