/**
 * src/validation/ajv.ts: the one Ajv instance and its error formatter, as the request validator words it.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ApiError } from '../src/problems/api-error.js';
import { SESSION_NAME } from '../src/validation/names.js';
import { compileRequestValidator, describeProblem, requestValidationError } from '../src/validation/ajv.js';

describe('request validation messages', () => {
  const body = compileRequestValidator({
    type: 'object',
    additionalProperties: false,
    properties: { name: { type: 'string', pattern: SESSION_NAME }, n: { type: 'integer' }, nested: { type: 'object', properties: { x: { type: 'integer' } } } },
  })!;

  function refusal(value: unknown, where = 'request body'): ApiError {
    assert.equal(body(value), false);
    return requestValidationError(where, body);
  }

  it('names the field and quotes Ajv: 400 invalid-api-params', () => {
    const e = refusal({ name: '../x' });
    assert.equal(e.status, 400);
    assert.equal(e.message, `Invalid request body "name": must match pattern "${SESSION_NAME}".`);
    assert.equal(refusal({ nested: { x: 'y' } }, 'query parameter').message, 'Invalid query parameter "nested.x": must be integer.');
  });

  it('a problem with the value itself names no field', () => {
    assert.equal(refusal([]).message, 'Invalid request body: must be object.');
    assert.equal(refusal({ extra: 1 }).message, 'Invalid request body: must NOT have additional properties.');
  });

  it('injects nothing into a body whose schema declares no defaults', () => {
    const value = { name: 'a' };
    assert.equal(body(value), true);
    assert.deepEqual(value, { name: 'a' });
  });

  it('no schema, no validator', () => {
    assert.equal(compileRequestValidator(undefined), undefined);
  });
});

describe('describeProblem', () => {
  it('gives the dotted path, the unknown key and the allowed values', () => {
    const v = compileRequestValidator({ type: 'object', additionalProperties: false, properties: { a: { type: 'object', properties: { b: { enum: ['x', 'y'] } } } } })!;
    assert.equal(v({ a: { b: 'z' } }), false);
    assert.deepEqual(describeProblem(v.errors![0]), { path: 'a.b', message: 'must be equal to one of the allowed values', allowed: ['x', 'y'] });
    assert.equal(v({ q: 1 }), false);
    assert.deepEqual(describeProblem(v.errors![0]), { path: '', message: 'must NOT have additional properties', unknownKey: 'q' });
  });
});
