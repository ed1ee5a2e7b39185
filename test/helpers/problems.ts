import assert from 'node:assert/strict';
import type { Response } from './gateway.js';

export const PROBLEM_BASE = 'https://api.backend.ai/probs/';

/** An RFC 9457 document of the given status (and slug), with the members Backend.AI SDKs read. */
export function assertProblem(res: Response, status: number, slug?: string): void {
  assert.equal(res.status, status, `expected ${status} ${slug ?? ''}, got ${res.status}: ${res.text}`);
  assert.match(String(res.headers['content-type']), /^application\/problem\+json/);
  if (slug) assert.equal(res.json.type, `${PROBLEM_BASE}${slug}`);
  assert.ok(String(res.json.type).startsWith(PROBLEM_BASE));
  assert.equal(res.json.status, status);
  assert.equal(typeof res.json.title, 'string');
  assert.equal(typeof res.json.detail, 'string');
  assert.equal(res.json.msg, res.json.detail);
}
