// Types of the playground's drawing module (draw.js), for the tests that run its pure parts in Node.
export interface Shape {
  points: Array<[number, number]>;
  label: string;
  confidence: number | undefined;
  landmarks: Array<[number, number]>;
}
export function shapesOf(result: unknown): Shape[];
export function percent(confidence: number): string;
export function drawResult(canvas: unknown, image: unknown, result: unknown): Shape[];
