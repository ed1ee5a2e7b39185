/**
 * Worker thread (built-in models) or child process (custom uploads) hosting one ONNX Runtime session.
 *
 * onnxruntime-node's `session.run` returns a promise but executes synchronously on the calling thread
 * (a setImmediate around the native call; measured: not one 1 ms timer tick fires during a 45 ms
 * detection run). On the main thread that would stall every HTTP request for the length of each
 * inference, so each model lives here and the main thread only posts tensors and awaits answers.
 */
import { readFileSync } from 'node:fs';
import { parentPort } from 'node:worker_threads';
import * as ort from 'onnxruntime-node';
import { createSession, ProviderLoadError } from '../providers.js';
import { ctcArgmax } from '../ocr/ctc.js';
import { buffersOf, type FromWorker, type RawTensor, type RawValues, type ToWorker } from './session-protocol.js';

// In a child process (custom models, see ort-process.ts) messages come over the IPC channel with
// structured-clone serialization; typed arrays are copied instead of transferred.
const port = parentPort;
if (!port && !process.send) throw new Error('session-worker must run in a worker thread or a forked process');
if (!port) process.on('disconnect', () => process.exit(0)); // the gateway went away

let session: ort.InferenceSession | undefined;

/** A copy we own (transferable) as float32; int64 outputs (arg-max indices) are numbers, exact below 2^24. */
const asFloat32 = (data: ort.Tensor['data']): Float32Array =>
  data instanceof BigInt64Array || data instanceof BigUint64Array ? Float32Array.from(data, Number) : Float32Array.from(data as Float32Array);
/**
 * A copy we own (transferable) in the output's own type. float16 goes as its 16-bit patterns whichever
 * array ORT gives (Uint16Array, or Float16Array where the runtime has one).
 */
function rawCopy(t: ort.Tensor): RawTensor {
  const dims = [...t.dims];
  if (t.type === 'string') return { type: t.type, data: [...(t.data as string[])], dims };
  const d = t.data as Exclude<RawValues, string[]>;
  if (t.type === 'float16' && !(d instanceof Uint16Array)) return { type: t.type, data: new Uint16Array(d.buffer, d.byteOffset, d.length).slice(), dims };
  return { type: t.type, data: d.slice(), dims };
}
const send = (msg: FromWorker, transfer: ArrayBuffer[] = []) => (port ? port.postMessage(msg, transfer) : process.send!(msg));

const onMessage = async (msg: ToWorker) => {
  if (msg.type === 'load') {
    try {
      // From bytes, a model has no folder: external-data references resolve nowhere.
      const source = msg.bytes ?? (msg.fromBytes ? new Uint8Array(readFileSync(msg.modelPath)) : msg.modelPath);
      const loaded = await createSession(source, { providers: msg.providers, intraOpNumThreads: msg.intraOpNumThreads, label: msg.modelPath });
      session = loaded.session;
      send({
        type: 'loaded',
        provider: loaded.provider,
        skipped: loaded.skipped,
        inputNames: [...session.inputNames],
        outputNames: [...session.outputNames],
        outputShapes: session.outputMetadata.map((m) => (m.isTensor ? [...m.shape] : [])),
        inputShapes: session.inputMetadata.map((m) => (m.isTensor ? [...m.shape] : [])),
        inputTypes: session.inputMetadata.map((m) => (m.isTensor ? String(m.type) : 'non-tensor')),
        outputTypes: session.outputMetadata.map((m) => (m.isTensor ? String(m.type) : 'non-tensor')),
      });
    } catch (err) {
      send({ type: 'load-error', message: err instanceof Error ? err.message : String(err), failures: err instanceof ProviderLoadError ? err.failures : [] });
    }
    return;
  }
  const { id } = msg;
  try {
    if (!session) throw new Error('session not loaded');
    if (msg.type === 'run-raw') {
      const feeds: Record<string, ort.Tensor> = {};
      for (const [name, t] of Object.entries(msg.feeds)) feeds[name] = new ort.Tensor(t.type as 'float32', t.data as Float32Array, t.dims);
      const outputs = await session.run(feeds, [...msg.outputs]);
      const raw: Record<string, RawTensor> = {};
      for (const name of msg.outputs) raw[name] = rawCopy(outputs[name]!);
      send({ type: 'raw-outputs', id, outputs: raw }, buffersOf(Object.values(raw)));
      return;
    }
    const feeds: Record<string, ort.Tensor> = {};
    for (const [name, t] of Object.entries(msg.feeds)) feeds[name] = new ort.Tensor('float32', t.data, t.dims);
    // Named outputs only (the caller asked for some): ORT copies out no others.
    const outputs = msg.outputs ? await session.run(feeds, [...msg.outputs]) : await session.run(feeds);
    if (msg.allOutputs || msg.outputs) {
      // Models whose answer spans several outputs (BlazeFace: scores and boxes of two anchor layers).
      const all: Record<string, { data: Float32Array; dims: number[] }> = {};
      for (const name of msg.outputs ?? session.outputNames) all[name] = { data: asFloat32(outputs[name]!.data), dims: [...outputs[name]!.dims] };
      send({ type: 'outputs', id, outputs: all }, Object.values(all).map((t) => t.data.buffer as ArrayBuffer));
      return;
    }
    const out = outputs[session.outputNames[0]!]!;
    const dims = [...out.dims];
    if (msg.reduce?.kind === 'argmax') {
      const r = ctcArgmax(out.data as Float32Array, dims, msg.reduce.watch);
      send({ type: 'argmax', id, output: r }, [r.index.buffer as ArrayBuffer, r.prob.buffer as ArrayBuffer, r.watched.buffer as ArrayBuffer]);
    } else {
      // Copy into a buffer we own so that it can be transferred (ORT may own the output's memory).
      const data = Float32Array.from(out.data as Float32Array);
      send({ type: 'output', id, output: { data, dims } }, [data.buffer as ArrayBuffer]);
    }
  } catch (err) {
    send({ type: 'error', id, message: err instanceof Error ? err.message : String(err) });
  }
};
if (port) port.on('message', onMessage);
else process.on('message', (m) => void onMessage(m as ToWorker));
