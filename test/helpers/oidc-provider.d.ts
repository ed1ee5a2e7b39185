// oidc-provider ships no type declarations (used by test/oidc-provider.test.ts only).
declare module 'oidc-provider';
