/**
 * Protocol tensors to and from ONNX Runtime's, for `kernelgate worker`: each in the model's own element
 * type with its values untouched (INT64 as 64-bit integers, BOOL as 0/1 bytes, FP16 as its 16-bit
 * patterns), so that any client of the protocol gets exactly what the model computed.
 */
import type { Datatype, TensorValues } from '../inference/runners/kserve/protocol.js';
import type { RawTensor } from '../inference/runners/runner.js';

/** ONNX Runtime element types as protocol datatypes. */
const ORT_TO_DATATYPE: Record<string, Datatype> = {
  float32: 'FP32', float16: 'FP16', float64: 'FP64', int8: 'INT8', int16: 'INT16', int32: 'INT32', int64: 'INT64',
  uint8: 'UINT8', uint16: 'UINT16', uint32: 'UINT32', uint64: 'UINT64', bool: 'BOOL', string: 'BYTES',
};

/** The protocol datatype of an ONNX Runtime element type; BYTES for strings and for types the protocol lacks. */
export const datatypeOf = (ortType: string | undefined): Datatype => ORT_TO_DATATYPE[ortType ?? ''] ?? 'BYTES';

/** ONNX Runtime's element type for each datatype the worker takes as input (BYTES is not one). */
const DATATYPE_TO_ORT: Partial<Record<Datatype, string>> = {
  FP32: 'float32', FP16: 'float16', FP64: 'float64', INT8: 'int8', INT16: 'int16', INT32: 'int32', INT64: 'int64',
  UINT8: 'uint8', UINT16: 'uint16', UINT32: 'uint32', UINT64: 'uint64', BOOL: 'bool',
};

/** Whether the worker takes inputs of this datatype (every numeric one and BOOL; not BYTES). */
export const acceptedInput = (datatype: Datatype): boolean => DATATYPE_TO_ORT[datatype] !== undefined;

/**
 * A decoded input as ONNX Runtime takes it. The protocol decoder already gives each datatype the array ORT
 * wants (BigInt64Array for INT64, Uint8Array for BOOL, Uint16Array for FP16), so the values pass as they are.
 */
export function rawFeed(datatype: Datatype, data: TensorValues, dims: number[]): RawTensor {
  const type = DATATYPE_TO_ORT[datatype];
  if (type === undefined || Array.isArray(data)) throw new Error(`${datatype} inputs are not taken`); // checked by the caller
  return { type, data, dims };
}

const utf8 = new TextEncoder();

/** An output in its own datatype; undefined when ONNX Runtime's element type has none in the protocol. */
export function protocolOutput(t: RawTensor): { datatype: Datatype; data: TensorValues } | undefined {
  if (t.type === 'string') return { datatype: 'BYTES', data: (t.data as string[]).map((s) => utf8.encode(s)) };
  const datatype = datatypeOf(t.type);
  if (datatype === 'BYTES' || Array.isArray(t.data)) return undefined; // e.g. int4: no protocol datatype
  return { datatype, data: t.data };
}
