export * from './algorithms.js';
export * from './authorization.js';
export * from './canonical.js';
export * from './dates.js';
export * from './sign-request.js';
export * from './signature.js';
export * from './signing-key.js';
