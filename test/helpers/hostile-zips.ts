/**
 * Valid and hostile model backup archives, written byte by byte (./zip.ts), shared by the reader's unit
 * tests and the HTTP restore tests: every hostile one must be refused whole with a 400.
 */
import { createHash } from 'node:crypto';
import { deflateRawSync } from 'node:zlib';
import { MANIFEST_NAME } from '../../src/inference/store/model-archive.js';
import { parseModelConfig } from '../../src/inference/store/model-config.js';
import { tinyClassifier } from './onnx.js';
import { craftZip, type CraftedEntry } from './zip.js';

export const config = (name: string) => parseModelConfig({ name, task: 'classify', input: { width: 8, height: 8 }, labels: ['a', 'b'] });
export const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
export const MODEL = tinyClassifier(8, 8);

/** The entries of a valid archive with one model `m1` in domain `default`, for hostile variants. */
export function goodEntries(extra: { models?: Array<{ domain?: string; name: string; onnx?: Buffer }> } = {}): CraftedEntry[] {
  const models = extra.models ?? [{ name: 'm1' }];
  const manifest = { format: 'kernelgate-models', version: 1, models: models.map((m) => ({ domain: m.domain ?? 'default', name: m.name, sha256: sha(m.onnx ?? MODEL), bytes: (m.onnx ?? MODEL).length })) };
  return [
    { name: MANIFEST_NAME, data: Buffer.from(JSON.stringify(manifest)) },
    ...models.flatMap((m): CraftedEntry[] => [
      { name: `models/${m.domain ?? 'default'}/${m.name}/config.json`, data: Buffer.from(JSON.stringify(config(m.name))) },
      { name: `models/${m.domain ?? 'default'}/${m.name}/model.onnx`, data: m.onnx ?? MODEL, method: 0 },
    ]),
  ];
}

/** Every way an archive is refused: name, archive, and a word the 400's detail must contain. */
export function hostileArchives(): Array<{ name: string; zip: Buffer; says: RegExp }> {
  const good = goodEntries();
  const bomb = Buffer.alloc(32 * 1024 * 1024);
  // Compressible about 10:1 (under the per-entry ratio) yet shared by 300 entries: only the total catches it.
  const stripes = Buffer.alloc(2 * 1024 * 1024);
  let seed = 1;
  for (let i = 0; i < stripes.length; i += 10) stripes[i] = (seed = (seed * 1103515245 + 12345) >>> 0) >>> 24;
  const stripesRaw = deflateRawSync(stripes);
  return [
    { name: 'a ../ entry (zip-slip)', zip: craftZip([...good, { name: '../evil.onnx', data: MODEL }]), says: /relative path|not part/ },
    { name: 'a nested .. entry', zip: craftZip([...good, { name: 'models/default/../../../etc/x', data: MODEL }]), says: /relative path/ },
    { name: 'an absolute path', zip: craftZip([...good, { name: '/tmp/evil.onnx', data: MODEL }]), says: /absolute path/ },
    { name: 'a drive letter', zip: craftZip([...good, { name: 'C:/evil.onnx', data: MODEL }]), says: /absolute path/ },
    { name: 'a backslash path', zip: craftZip([...good, { name: 'models\\default\\x\\model.onnx', data: MODEL }]), says: /invalid characters/ },
    { name: 'a symlink entry', zip: craftZip([...good.slice(0, 2), { name: 'models/default/m1/model.onnx', data: Buffer.from('/etc/passwd'), method: 0, unixMode: 0o120777 }]), says: /link or a special file/ },
    { name: 'a fifo entry', zip: craftZip([...good, { name: 'models/default/m2/model.onnx', data: Buffer.alloc(0), unixMode: 0o010644 }]), says: /link or a special file/ },
    { name: 'a duplicate name', zip: craftZip([...good, good[2]!]), says: /appears twice/ },
    { name: 'a duplicate name in other case', zip: craftZip([...good, { name: MANIFEST_NAME.toUpperCase(), data: good[0]!.data }]), says: /appears twice/ },
    { name: 'a directory twice (trailing slash)', zip: craftZip([{ name: 'models/', data: Buffer.alloc(0) }, { name: 'MODELS/', data: Buffer.alloc(0) }, ...good]), says: /appears twice/ },
    {
      name: 'an entry that inflates past its declared size',
      zip: craftZip([...good.slice(0, 2), { name: 'models/default/m1/model.onnx', data: Buffer.alloc(1024 * 1024, 7), uncompressedSize: MODEL.length }]),
      says: /corrupt|inflates past|too many bytes|size/,
    },
    { name: 'an entry that inflates short of its declared size', zip: craftZip([...good.slice(0, 2), { name: 'models/default/m1/model.onnx', data: MODEL, uncompressedSize: MODEL.length + 100 }]), says: /corrupt|too few|size/ },
    { name: '10 000 entries', zip: craftZip(Array.from({ length: 10_000 }, (_, i) => ({ name: `models/default/m${i}/`, method: 0 }))), says: /10000 entries, more than the limit of 4096/ },
    { name: 'a zip bomb (32 MiB of zeros)', zip: craftZip([...good, { name: 'models/default/m2/model.onnx', data: bomb, crc: 0 }]), says: /would inflate \d+ times/ },
    {
      name: 'overlapping entries (300 entries share one deflate stream)',
      zip: craftZip([...good, { name: 'models/default/s0/model.onnx', data: stripes, raw: stripesRaw }, ...Array.from({ length: 299 }, (_, i): CraftedEntry => ({ name: `models/default/s${i + 1}/model.onnx`, shareDataOf: good.length }))]),
      says: /inflate past \d+ bytes/,
    },
    { name: 'an encrypted entry', zip: craftZip([...good.slice(0, 2), { name: 'models/default/m1/model.onnx', data: MODEL, flags: 0x0801 }]), says: /encrypted/ },
    { name: 'an unknown compression method', zip: craftZip([...good.slice(0, 2), { name: 'models/default/m1/model.onnx', data: MODEL, method: 12, raw: MODEL }]), says: /compression method 12/ },
    { name: 'an entry outside the layout', zip: craftZip([...good, { name: 'models/default/m1/notes.txt', data: Buffer.from('hi') }]), says: /not part of a kernelgate backup/ },
    { name: 'no manifest', zip: craftZip(good.slice(1)), says: /has no kernelgate-backup.json/ },
    { name: 'a manifest of another format', zip: craftZip([{ name: MANIFEST_NAME, data: Buffer.from('{"format":"deepstack","version":1,"models":[]}') }, ...good.slice(1)]), says: /not a kernelgate models manifest/ },
    { name: 'a model file that does not match its hash', zip: craftZip([...good.slice(0, 2), { name: 'models/default/m1/model.onnx', data: Buffer.concat([MODEL, Buffer.from([0])]), method: 0 }]), says: /does not match the sha256/ },
    { name: 'a model without its config', zip: craftZip([good[0]!, good[2]!]), says: /config.json is missing/ },
    { name: 'a model not in the manifest', zip: craftZip([...good, ...goodEntries({ models: [{ name: 'm2' }] }).slice(1)]), says: /not listed/ },
    {
      name: 'a config that fails validation',
      zip: craftZip([good[0]!, { name: 'models/default/m1/config.json', data: Buffer.from(JSON.stringify({ name: 'm1', task: 'classify', input: { width: 0, height: 8 }, labels: ['a'] })) }, good[2]!]),
      says: /Invalid model config/,
    },
    { name: 'a config that names another model', zip: craftZip([good[0]!, { name: 'models/default/m1/config.json', data: Buffer.from(JSON.stringify(config('m9'))) }, good[2]!]), says: /names the model "m9"/ },
    { name: 'a truncated archive', zip: craftZip(good).subarray(0, 200), says: /not a readable zip|not a valid zip/ },
    { name: 'not a zip at all', zip: Buffer.from('{"models": []}'), says: /not a readable zip/ },
  ];
}


/**
 * Archives that are well-formed zips of the right layout but must still be refused whole: a model ONNX
 * Runtime cannot load (beside a good one, which must not be restored either).
 */
export function unloadableArchives(): Array<{ name: string; zip: Buffer; says: RegExp }> {
  const junk = Buffer.from('this is not an ONNX model at all');
  return [
    { name: 'a model that does not load', zip: craftZip(goodEntries({ models: [{ name: 'junk', onnx: junk }] })), says: /could not be loaded by ONNX Runtime/ },
    { name: 'a good model beside one that does not load', zip: craftZip(goodEntries({ models: [{ name: 'fresh' }, { name: 'junk', onnx: junk }] })), says: /model "junk"/ },
  ];
}
