/**
 * The Open Inference Protocol encoders and decoders (src/inference/runners/kserve/protocol.ts) against the
 * specification's own examples: the KServe v2 REST inference request and response JSON
 * (kserve/open-inference-protocol, specification/protocol/inference_rest.md) and the binary tensor data
 * extension's request and response (triton-inference-server/server, docs/protocol/extension_binary_data.md):
 * JSON shapes, the byte layout after the JSON, the header length, BOOL and BYTES encodings. Then fuzzing:
 * the decoders never throw anything but ProtocolError, stay linear on adversarial input, and round-trip.
 * Last, `kernelgate worker`'s mapping between protocol and ONNX Runtime tensors keeps every datatype's
 * extreme values exact through both encodings.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  concatEncoded, decodeInferRequest, decodeInferResponse, decodeModelMetadata, encodeInferRequest, encodeInferResponse, floatToHalf, halfToFloat,
  parseHeaderLength, parseReady, ProtocolError, type Datatype, type Tensor,
} from '../src/inference/runners/kserve/protocol.js';
import { acceptedInput, protocolOutput, rawFeed } from '../src/worker/tensors.js';

const utf8 = (s: string) => new TextEncoder().encode(s);

/** The spec's JSON inference request example, verbatim. */
const SPEC_JSON_REQUEST = `{
  "id" : "42",
  "inputs" : [
    {
      "name" : "input0",
      "shape" : [ 2, 2 ],
      "datatype" : "UINT32",
      "data" : [ 1, 2, 3, 4 ]
    },
    {
      "name" : "input1",
      "shape" : [ 3 ],
      "datatype" : "BOOL",
      "data" : [ true ]
    }
  ],
  "outputs" : [
    {
      "name" : "output0"
    }
  ]
}`;

/** The spec's JSON response example (the specification omits the comma after "42"; added here). */
const SPEC_JSON_RESPONSE = `{
  "id" : "42",
  "outputs" : [
    {
      "name" : "output0",
      "shape" : [ 3, 2 ],
      "datatype"  : "FP32",
      "data" : [ 1.0, 1.1, 2.0, 2.1, 3.0, 3.1 ]
    }
  ]
}`;

/** The binary extension's request JSON, as the extension document shows it (without "model_name", which it also shows but the request object does not define). */
const SPEC_BINARY_REQUEST_JSON = {
  inputs: [
    { name: 'input0', shape: [2, 2], datatype: 'UINT32', parameters: { binary_data_size: 16 } },
    { name: 'input1', shape: [3], datatype: 'BOOL', parameters: { binary_data_size: 3 } },
  ],
  outputs: [{ name: 'output0', parameters: { binary_data: true } }],
};

const SPEC_BINARY_RESPONSE_JSON = { outputs: [{ name: 'output0', shape: [3, 2], datatype: 'FP32', parameters: { binary_data_size: 24 } }] };

describe('Open Inference Protocol: the specification examples', () => {
  it('decodes the JSON request example; its BOOL input (shape [3], one value) is refused as the spec prints it', () => {
    assert.throws(() => decodeInferRequest(utf8(SPEC_JSON_REQUEST), undefined), (e: Error) => e instanceof ProtocolError && /1 elements, the shape holds 3/.test(e.message));
    const fixed = SPEC_JSON_REQUEST.replace('"data" : [ true ]', '"data" : [ true, false, true ]');
    const req = decodeInferRequest(utf8(fixed), undefined);
    assert.equal(req.id, '42');
    assert.deepEqual(req.inputs.map((t) => [t.name, t.datatype, t.shape]), [['input0', 'UINT32', [2, 2]], ['input1', 'BOOL', [3]]]);
    assert.deepEqual([...(req.inputs[0]!.data as Uint32Array)], [1, 2, 3, 4]);
    assert.ok(req.inputs[0]!.data instanceof Uint32Array);
    assert.deepEqual([...(req.inputs[1]!.data as Uint8Array)], [1, 0, 1]);
    assert.deepEqual(req.outputs, [{ name: 'output0' }]);
    // Encoded back as JSON tensors: the same object as the (fixed) example.
    const again = encodeInferRequest({ id: req.id, inputs: req.inputs, outputs: req.outputs }, { binary: false });
    assert.equal(again.headerLength, undefined);
    assert.equal(again.contentType, 'application/json');
    assert.deepEqual(JSON.parse(concatEncoded(again).toString()), JSON.parse(fixed));
  });

  it('decodes the JSON response example and encodes the same object', () => {
    const res = decodeInferResponse(utf8(SPEC_JSON_RESPONSE), undefined);
    assert.equal(res.id, '42');
    const out = res.outputs[0]!;
    assert.deepEqual([out.name, out.datatype, out.shape], ['output0', 'FP32', [3, 2]]);
    assert.deepEqual([...(out.data as Float32Array)], [1.0, 1.1, 2.0, 2.1, 3.0, 3.1].map(Math.fround));
    const enc = encodeInferResponse({ id: '42', outputs: [{ ...out, data: Float32Array.from([1.0, 1.5, 2.0, 2.5, 3.0, 3.5]) }] }, () => false);
    assert.deepEqual(JSON.parse(concatEncoded(enc).toString()), JSON.parse(SPEC_JSON_RESPONSE.replace('1.1', '1.5').replace('2.1', '2.5').replace('3.1', '3.5')));
  });

  it('the binary request example: JSON, then 16 bytes of UINT32 little-endian, then 3 BOOL bytes; the header length is the JSON', () => {
    const inputs: Tensor[] = [
      { name: 'input0', shape: [2, 2], datatype: 'UINT32', data: Uint32Array.from([1, 2, 3, 4]) },
      { name: 'input1', shape: [3], datatype: 'BOOL', data: Uint8Array.from([1, 0, 1]) },
    ];
    const enc = encodeInferRequest({ inputs, outputs: [{ name: 'output0', binary: true }] }, { binary: true });
    const body = concatEncoded(enc);
    assert.equal(enc.contentType, 'application/octet-stream');
    assert.equal(enc.length, body.length);
    assert.equal(body.length, enc.headerLength! + 19, 'the total size of the binary data is 19 bytes');
    assert.deepEqual(JSON.parse(body.subarray(0, enc.headerLength).toString()), SPEC_BINARY_REQUEST_JSON);
    assert.deepEqual([...body.subarray(enc.headerLength!)], [1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4, 0, 0, 0, 1, 0, 1]);
    // And read back by the server side, given the header as a string (an HTTP header value).
    const req = decodeInferRequest(body, parseHeaderLength(String(enc.headerLength), body.length));
    assert.deepEqual([...(req.inputs[0]!.data as Uint32Array)], [1, 2, 3, 4]);
    assert.deepEqual([...(req.inputs[1]!.data as Uint8Array)], [1, 0, 1]);
    assert.deepEqual(req.outputs, [{ name: 'output0', binary: true }]);
  });

  it('the spec example JSON with model_name, typed by hand with its own spacing, decodes the same', () => {
    const json = `{
  "model_name" : "mymodel",
  "inputs" : [
    { "name" : "input0", "shape" : [ 2, 2 ], "datatype" : "UINT32", "parameters" : { "binary_data_size" : 16 } },
    { "name" : "input1", "shape" : [ 3 ], "datatype" : "BOOL", "parameters" : { "binary_data_size" : 3 } }
  ],
  "outputs" : [ { "name" : "output0", "parameters" : { "binary_data" : true } } ]
}`;
    const head = utf8(json);
    const tail = Uint8Array.from([4, 0, 0, 0, 3, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 0, 1, 1]);
    const body = Buffer.concat([head, tail]);
    const req = decodeInferRequest(body, head.length);
    assert.deepEqual([...(req.inputs[0]!.data as Uint32Array)], [4, 3, 2, 1]);
    assert.deepEqual([...(req.inputs[1]!.data as Uint8Array)], [0, 1, 1]);
  });

  it('the binary response example: a [3, 2] FP32 output as 24 bytes after the JSON', () => {
    const values = Float32Array.from([1.0, 1.1, 2.0, 2.1, 3.0, 3.1]);
    const enc = encodeInferResponse({ outputs: [{ name: 'output0', shape: [3, 2], datatype: 'FP32', data: values }] }, () => true);
    const body = concatEncoded(enc);
    assert.equal(body.length, enc.headerLength! + 24);
    assert.deepEqual(JSON.parse(body.subarray(0, enc.headerLength).toString()), SPEC_BINARY_RESPONSE_JSON);
    const tail = body.subarray(enc.headerLength!);
    for (let i = 0; i < 6; i++) assert.equal(tail.readFloatLE(i * 4), values[i]);
    const res = decodeInferResponse(body, enc.headerLength);
    assert.deepEqual([...(res.outputs[0]!.data as Float32Array)], [...values]);
  });

  it('BYTES: each element a 4-byte little-endian length and its bytes; JSON carries strings', () => {
    const t: Tensor = { name: 's', shape: [3], datatype: 'BYTES', data: [utf8('abc'), utf8(''), utf8('é')] };
    const enc = encodeInferResponse({ outputs: [t] }, () => true);
    const body = concatEncoded(enc);
    assert.deepEqual([...body.subarray(enc.headerLength!)], [3, 0, 0, 0, 0x61, 0x62, 0x63, 0, 0, 0, 0, 2, 0, 0, 0, 0xc3, 0xa9]);
    assert.equal(JSON.parse(body.subarray(0, enc.headerLength).toString()).outputs[0].parameters.binary_data_size, 17);
    const back = decodeInferResponse(body, enc.headerLength).outputs[0]!.data as Uint8Array[];
    assert.deepEqual(back.map((b) => Buffer.from(b).toString()), ['abc', '', 'é']);
    const json = JSON.parse(concatEncoded(encodeInferResponse({ outputs: [t] }, () => false)).toString());
    assert.deepEqual(json.outputs[0], { name: 's', shape: [3], datatype: 'BYTES', data: ['abc', '', 'é'] });
    // A length running past the tensor, and leftover bytes, are refused.
    const bad = (tail: number[], size: number) => Buffer.concat([utf8(JSON.stringify({ outputs: [{ name: 's', shape: [1], datatype: 'BYTES', parameters: { binary_data_size: size } }] })), Buffer.from(tail)]);
    const b1 = bad([9, 0, 0, 0, 1], 5);
    assert.throws(() => decodeInferResponse(b1, b1.length - 5), ProtocolError);
    const b2 = bad([1, 0, 0, 0, 1, 7], 6);
    assert.throws(() => decodeInferResponse(b2, b2.length - 6), /after its 1 elements/);
  });

  it('BOOL bytes other than 0 and 1, sizes that do not match, and bytes past the last tensor are refused', () => {
    const msg = (size: number, tail: number[], extra = 0) => {
      const head = utf8(JSON.stringify({ outputs: [{ name: 'b', shape: [2], datatype: 'BOOL', parameters: { binary_data_size: size } }] }));
      return { body: Buffer.concat([head, Buffer.from(tail), Buffer.alloc(extra)]), hl: head.length };
    };
    let m = msg(2, [1, 2]);
    assert.throws(() => decodeInferResponse(m.body, m.hl), /only 0 and 1/);
    m = msg(3, [1, 0, 1]);
    assert.throws(() => decodeInferResponse(m.body, m.hl), /needs 2 bytes, got 3/);
    m = msg(2, [1, 0], 4);
    assert.throws(() => decodeInferResponse(m.body, m.hl), /4 bytes after the last binary tensor/);
    m = msg(9, [1, 0]);
    assert.throws(() => decodeInferResponse(m.body, m.hl), /runs past the end/);
  });

  it('nested JSON data is row-major, the same as flat', () => {
    const nested = decodeInferRequest(utf8('{"inputs":[{"name":"x","shape":[2,2],"datatype":"INT32","data":[[1,2],[4,5]]}]}'), undefined);
    const flat = decodeInferRequest(utf8('{"inputs":[{"name":"x","shape":[2,2],"datatype":"INT32","data":[1,2,4,5]}]}'), undefined);
    assert.deepEqual(nested.inputs, flat.inputs);
  });

  it('FP16 as half-precision bits; INT64 beyond 2^53 as strings in JSON', () => {
    assert.equal(floatToHalf(1), 0x3c00);
    assert.equal(floatToHalf(-2), 0xc000);
    assert.equal(floatToHalf(65504), 0x7bff);
    assert.equal(floatToHalf(1e6), 0x7c00);
    assert.equal(halfToFloat(0x3555), 0.333251953125);
    assert.equal(halfToFloat(0x0001), 2 ** -24);
    const big = decodeInferRequest(utf8('{"inputs":[{"name":"x","shape":[2],"datatype":"INT64","data":[-5,"9223372036854775807"]}]}'), undefined);
    assert.deepEqual([...(big.inputs[0]!.data as BigInt64Array)], [-5n, 9223372036854775807n]);
    const out = JSON.parse(concatEncoded(encodeInferRequest({ inputs: big.inputs }, { binary: false })).toString());
    assert.deepEqual(out.inputs[0].data, [-5, '9223372036854775807']);
  });

  it('Inference-Header-Content-Length: digits only, within the body', () => {
    assert.equal(parseHeaderLength(undefined, 10), undefined);
    assert.equal(parseHeaderLength('7', 10), 7);
    for (const v of ['', '+7', '7.0', ' 7', '0x7', '-1', '1e1', '11']) assert.throws(() => parseHeaderLength(v, 10), ProtocolError, v);
    assert.throws(() => parseHeaderLength(['1', '2'], 10), ProtocolError);
  });

  it('model ready in both styles: 200 with an empty body (Triton) or {"ready": true} (KServe)', () => {
    assert.equal(parseReady(200, new Uint8Array()), true);
    assert.equal(parseReady(200, utf8('{"name":"m","ready":true}')), true);
    assert.equal(parseReady(200, utf8('{"name":"m","ready":false}')), false);
    assert.equal(parseReady(400, utf8('{"error":"unavailable"}')), false);
    assert.equal(parseReady(200, utf8('not json')), false);
  });

  it('model metadata: names, datatypes, shapes with -1', () => {
    const meta = decodeModelMetadata(utf8('{"name":"ocr-det","versions":["1"],"platform":"onnxruntime_onnx","inputs":[{"name":"x","datatype":"FP32","shape":[-1,3,-1,-1]}],"outputs":[{"name":"y","datatype":"FP32","shape":[-1,1,-1,-1]}]}'));
    assert.deepEqual(meta.inputs, [{ name: 'x', datatype: 'FP32', shape: [-1, 3, -1, -1] }]);
    assert.throws(() => decodeModelMetadata(utf8('{"name":"m","inputs":[{"name":"x","datatype":"FLOAT","shape":[1]}],"outputs":[]}')), ProtocolError);
    assert.throws(() => decodeModelMetadata(utf8('{"name":"m","inputs":[{"name":"x","datatype":"FP32","shape":[-2]}],"outputs":[]}')), ProtocolError);
  });
});

// ------------------------------------------------------------------------------------------- fuzzing

const NUMERIC: Datatype[] = ['UINT8', 'UINT16', 'UINT32', 'INT8', 'INT16', 'INT32', 'FP32', 'FP64'];

const tensorArb: fc.Arbitrary<Tensor> = fc
  .record({
    name: fc.string({ minLength: 1, maxLength: 8 }),
    kind: fc.constantFrom<Datatype>('BOOL', 'BYTES', 'INT64', 'FP16', ...NUMERIC),
    shape: fc.array(fc.integer({ min: 0, max: 4 }), { minLength: 1, maxLength: 3 }),
    seed: fc.integer(),
  })
  .map(({ name, kind, shape, seed }) => {
    const n = shape.reduce((a, b) => a * b, 1);
    const r = (i: number) => Math.abs((seed ^ (i * 2654435761)) % 1000);
    let data: Tensor['data'];
    switch (kind) {
      case 'BOOL': data = Uint8Array.from({ length: n }, (_, i) => r(i) & 1); break;
      case 'BYTES': data = Array.from({ length: n }, (_, i) => utf8('x'.repeat(r(i) % 5))); break;
      case 'INT64': data = BigInt64Array.from({ length: n }, (_, i) => BigInt(r(i) - 500)); break;
      case 'FP16': data = Uint16Array.from({ length: n }, (_, i) => floatToHalf(r(i) / 8)); break;
      case 'UINT8': data = Uint8Array.from({ length: n }, (_, i) => r(i) % 256); break;
      case 'UINT16': data = Uint16Array.from({ length: n }, (_, i) => r(i)); break;
      case 'UINT32': data = Uint32Array.from({ length: n }, (_, i) => r(i)); break;
      case 'INT8': data = Int8Array.from({ length: n }, (_, i) => (r(i) % 256) - 128); break;
      case 'INT16': data = Int16Array.from({ length: n }, (_, i) => r(i) - 500); break;
      case 'INT32': data = Int32Array.from({ length: n }, (_, i) => r(i) - 500); break;
      case 'FP64': data = Float64Array.from({ length: n }, (_, i) => r(i) / 7); break;
      default: data = Float32Array.from({ length: n }, (_, i) => Math.fround(r(i) / 7));
    }
    return { name, datatype: kind, shape, data };
  });

const plain = (t: Tensor) => ({ ...t, data: Array.isArray(t.data) ? t.data.map((b) => [...b]) : [...(t.data as Uint8Array)] });

describe('Open Inference Protocol: fuzzing the decoders', () => {
  it('round-trips any tensors, binary and JSON, requests and responses', () => {
    fc.assert(
      fc.property(fc.array(tensorArb, { minLength: 1, maxLength: 4 }), fc.boolean(), (tensors, binary) => {
        const req = encodeInferRequest({ id: 'r', inputs: tensors }, { binary });
        const back = decodeInferRequest(concatEncoded(req), req.headerLength);
        assert.deepEqual(back.inputs.map(plain), tensors.map(plain));
        const res = encodeInferResponse({ outputs: tensors }, () => binary);
        assert.deepEqual(decodeInferResponse(concatEncoded(res), res.headerLength).outputs.map(plain), tensors.map(plain));
      }),
      { numRuns: 300 },
    );
  });

  it('random bytes and mutated messages only ever raise ProtocolError', () => {
    const onlyProtocolErrors = (fn: () => unknown) => {
      try {
        fn();
      } catch (e) {
        if (!(e instanceof ProtocolError)) throw e;
      }
    };
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.nat(320), (bytes, hl) => {
        onlyProtocolErrors(() => decodeInferRequest(bytes, Math.min(hl, bytes.length)));
        onlyProtocolErrors(() => decodeInferResponse(bytes, undefined));
        onlyProtocolErrors(() => decodeModelMetadata(bytes));
      }),
      { numRuns: 500 },
    );
    fc.assert(
      fc.property(fc.array(tensorArb, { minLength: 1, maxLength: 3 }), fc.nat(), fc.integer({ min: 0, max: 255 }), fc.integer({ min: -8, max: 8 }), (tensors, at, byte, shift) => {
        const enc = encodeInferRequest({ inputs: tensors }, { binary: true });
        const body = Buffer.from(concatEncoded(enc));
        body[at % body.length] = byte;
        const hl = Math.max(0, Math.min(body.length, enc.headerLength! + shift));
        onlyProtocolErrors(() => decodeInferRequest(body, hl));
      }),
      { numRuns: 500 },
    );
  });

  it('adversarial JSON stays linear: deep nesting, huge shapes, long arrays', () => {
    const deep = `{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":${'['.repeat(200_000)}1${']'.repeat(200_000)}}]}`;
    assert.throws(() => decodeInferRequest(utf8(deep), undefined), ProtocolError);
    const huge = '{"inputs":[{"name":"x","shape":[4294967296,4294967296,4294967296],"datatype":"FP32","parameters":{"binary_data_size":0}}]}';
    assert.throws(() => decodeInferRequest(utf8(huge), undefined), /more elements than the message can carry/);
    const long = `{"inputs":[{"name":"x","shape":[2],"datatype":"FP32","data":[${'1,'.repeat(500_000)}1]}]}`;
    assert.throws(() => decodeInferRequest(utf8(long), undefined), /more elements than the shape holds/);
    const ranks = `{"inputs":[{"name":"x","shape":[${'1,'.repeat(100_000)}1],"datatype":"FP32","data":[1]}]}`;
    assert.throws(() => decodeInferRequest(utf8(ranks), undefined), /dimensions/);
  });
});

describe('kernelgate worker: protocol tensors to and from ONNX Runtime', () => {
  /** Each datatype's extremes as a worker input would decode them (FP16 as bits; no -0 or NaN: JSON has neither). */
  const extremes: Array<[Datatype, Exclude<Tensor['data'], Uint8Array[]>]> = [
    ['INT64', BigInt64Array.from([-(2n ** 63n), 2n ** 63n - 1n, 2n ** 40n + 3n])],
    ['UINT64', BigUint64Array.from([0n, 2n ** 64n - 1n, 2n ** 53n + 1n])],
    ['INT32', Int32Array.from([-(2 ** 31), 2 ** 31 - 1, 16777217])],
    ['UINT32', Uint32Array.from([0, 2 ** 32 - 1, 16777217])],
    ['INT16', Int16Array.from([-32768, 32767, 1])],
    ['UINT16', Uint16Array.from([0, 65535, 257])],
    ['INT8', Int8Array.from([-128, 127, 0])],
    ['UINT8', Uint8Array.from([0, 255, 17])],
    ['BOOL', Uint8Array.from([1, 0, 1])],
    ['FP16', Uint16Array.from([0x7bff, 0x0001, 0xc000])],
    ['FP32', Float32Array.from([3.4028234663852886e38, 2 ** -149, 0.1])],
    ['FP64', Float64Array.from([Number.MAX_VALUE, 5e-324, 0.1])],
  ];

  it('every numeric datatype and BOOL goes to ORT and back as itself, values untouched, exact in binary and JSON', () => {
    assert.equal(acceptedInput('BYTES'), false);
    for (const [datatype, data] of extremes) {
      assert.equal(acceptedInput(datatype), true, datatype);
      const feed = rawFeed(datatype, data, [3]);
      assert.equal(feed.data, data, `${datatype}: the decoded array goes to ORT as it is`);
      // What ORT answers for a tensor of that element type is answered in the same datatype.
      const out = protocolOutput(feed)!;
      assert.equal(out.datatype, datatype, feed.type);
      for (const binary of [true, false]) {
        const res = encodeInferResponse({ outputs: [{ name: 'y', shape: [3], ...out }] }, () => binary);
        const back = decodeInferResponse(concatEncoded(res), res.headerLength).outputs[0]!;
        assert.equal(back.datatype, datatype);
        assert.deepEqual([...(back.data as Uint8Array)], [...(data as Uint8Array)], `${datatype} ${binary ? 'binary' : 'JSON'}`);
      }
    }
    // Strings are answered as BYTES (UTF-8); element types the protocol lacks are not answered at all.
    const text = protocolOutput({ type: 'string', data: ['é', ''], dims: [2] })!;
    assert.equal(text.datatype, 'BYTES');
    assert.deepEqual((text.data as Uint8Array[]).map((b) => Buffer.from(b).toString()), ['é', '']);
    assert.equal(protocolOutput({ type: 'int4', data: new Uint8Array(1), dims: [2] }), undefined);
  });
});
