/**
 * The formats of the names kernelgate accepts, each written once. A leaf module: the signing core, the
 * keypair files, the schemas and the stores all check names against these.
 */

/** An access key: anything we will ever look up, and a safe file name (keypairs/<ACCESS_KEY>.toml). */
export const ACCESS_KEY_FORMAT = /^[A-Za-z0-9]{4,128}$/;

/** A session name, as a JSON Schema `pattern` (request schemas and the OpenAPI document print it). */
export const SESSION_NAME = '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$';
export const SESSION_NAME_FORMAT = new RegExp(SESSION_NAME);

/** A custom model's name, as a JSON Schema `pattern`; also a safe file name in models_dir. */
export const MODEL_NAME = '^[a-z0-9][a-z0-9._-]{0,63}$';
export const MODEL_NAME_FORMAT = new RegExp(MODEL_NAME);
