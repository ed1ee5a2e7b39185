/**
 * `--help` for every command and subcommand. This module imports nothing, so
 * `kernelgate <anything> --help` answers without loading the server, the
 * config schema or a keypair.
 */

export const USAGE = `Usage: kernelgate <command> [options]

Commands:
  serve     [--config FILE] [--host ADDR] [--port N]    run the gateway
  keypair   create|list|revoke [...]                     manage keypair files
  sign      METHOD PATH [--data ...] [--endpoint URL]    sign and send one request (a curl for this API)
  model     upload|list|remove|backup|restore [...]      manage custom models (admin keypair)
  proxy     -k KEYPAIR.toml [--upstream URL] [...]       run the server-side signing proxy
  worker    [--config FILE] [--host ADDR] [--port 8000]  serve every model over the Open Inference Protocol

Run "kernelgate <command> --help" for a command's options.

Example:
  kernelgate serve --config config.toml`;

const HELP: Record<string, string> = {
  worker: `Usage: kernelgate worker [--config FILE] [--host ADDR] [--port N] [--token T]
       kernelgate worker --export-repository DIR [--config FILE]

Serves every built-in model (ocr-det, ocr-cls, ocr-rec) and every uploaded model of models_dir
(as <domain>.<name>) over the Open Inference Protocol (KServe v2 REST, with Triton's binary tensor
extension), run by the local ONNX Runtime (providers from [inference], CUDA first), for gateways whose
[inference] backend = "kserve". Routes: GET /v2/health/live|ready (public), GET /v2,
GET /v2/models/{m}, GET /v2/models/{m}/ready, POST /v2/models/{m}/infer, GET /metrics.

Options:
  -c, --config FILE            a config.toml ([worker], [inference] and [log] are read)
      --host ADDR              listen address (default 127.0.0.1)
  -p, --port N                 listen port (default 8000; 0 picks a free one, printed in the log)
      --token T                bearer token clients must send (16-512 printable characters; or
                               KERNELGATE_WORKER_TOKEN, which process lists do not show, or
                               [worker] token); required unless the address is loopback
      --export-repository DIR  write the same models as a Triton model repository into DIR
                               (DIR/<name>/config.pbtxt and DIR/<name>/1/model.onnx) and exit
  -h, --help                   this text

Example:
  kernelgate worker --host 0.0.0.0 --port 8000    # with KERNELGATE_WORKER_TOKEN set
  kernelgate worker --export-repository /srv/triton-models && tritonserver --model-repository /srv/triton-models`,

  serve: `Usage: kernelgate serve [--config FILE] [--host ADDR] [--port N]

Runs the gateway in the foreground. Flags override the file; without --config it runs on the
embedded defaults (memory store, keypairs from ./keypairs, 127.0.0.1:8080).

Options:
  -c, --config FILE   a config.toml (relative paths in it resolve against its folder)
      --host ADDR     listen address (default 127.0.0.1); a non-loopback address is refused
                      while a keypair with a secret published in the repository is loaded
  -p, --port N        listen port (default 8080; 0 picks a free one, printed in the log)
  -h, --help          this text

Example:
  kernelgate serve --config examples/config.toml --port 8080`,

  keypair: `Usage: kernelgate keypair <create|list|revoke> [options]

Manages keypair files (<dir>/<ACCESS_KEY>.toml). The gateway picks up changes without a restart.

Subcommands:
  create    a new keypair; prints the secret once
  list      the keypairs, without their secrets
  revoke    deactivate (or --delete) a keypair
  apikey    add|list|revoke static API keys of a keypair

Run "kernelgate keypair <subcommand> --help" for its options.

Example:
  kernelgate keypair create --user me@example.com`,

  'keypair create': `Usage: kernelgate keypair create [options]

Writes a new keypair file <dir>/<ACCESS_KEY>.toml (mode 0600, written atomically) and prints the
access key and the secret key; the secret is shown only this once.

Options:
      --role ROLE         user (default), admin or superadmin
      --domain D          domain (default "default")
      --user EMAIL        the user this keypair belongs to
      --rate-limit N      requests per window (default: ratelimit.default_limit)
      --max-sessions N    concurrent compute sessions (default: sessions.default_max_sessions)
      --expires-at ISO    expiry date, e.g. 2027-01-01T00:00:00Z
      --dir DIR           keypair folder (default ./keypairs)
  -c, --config FILE       use the keypair folder of this config file
      --json              print {"access_key", "secret_key", "file"} as JSON
  -h, --help              this text

Example:
  kernelgate keypair create --role admin --domain default --user admin@example.com`,

  'keypair list': `Usage: kernelgate keypair list [--dir DIR | --config FILE] [--json]

Lists the keypairs in the folder without their secrets; broken files are listed with their error.

Options:
      --dir DIR       keypair folder (default ./keypairs)
  -c, --config FILE   use the keypair folder of this config file
      --json          one JSON array
  -h, --help          this text

Example:
  kernelgate keypair list --dir examples/keypairs --json`,

  'keypair revoke': `Usage: kernelgate keypair revoke ACCESS_KEY [--delete] [--dir DIR | --config FILE]

Sets is_active = false in the keypair's file (or removes the file with --delete).

Options:
      --delete        remove the file instead
      --dir DIR       keypair folder (default ./keypairs)
  -c, --config FILE   use the keypair folder of this config file
  -h, --help          this text

Example:
  kernelgate keypair revoke AKIAEXAMPLEADMIN0001 --dir examples/keypairs --delete`,

  'keypair apikey': `Usage: kernelgate keypair apikey <add|list|revoke> ACCESS_KEY [options]

Static API keys of a keypair (used when "apikey" is in [auth] schemes). The keypair file stores only
each key's SHA-256 with its id, scope and dates; the key itself is printed once, by add.

Subcommands:
  add       a new key for the keypair; prints it once
  list      the keypair's keys: ids, scopes, dates (never the keys)
  revoke    remove one key by its id

Options:
  -h, --help          this text

Example:
  kernelgate keypair apikey add AKIAEXAMPLEUSER00001 --scope read`,

  'keypair apikey add': `Usage: kernelgate keypair apikey add ACCESS_KEY [--scope read|full] [--expires-at ISO] [--dir DIR | --config FILE] [--json]

Creates a static API key (kg_ + 32 base62 characters, 190 random bits) for the keypair, stores its
SHA-256, id, scope and dates in the keypair file (written atomically) and prints the key once.

Options:
      --scope SCOPE       read (GET routes and inference on existing sessions) or full (default)
      --expires-at ISO    when the key stops working (ISO 8601)
      --dir DIR           keypair folder (default ./keypairs)
  -c, --config FILE       use the keypair folder of this config file
      --json              one JSON object {id, api_key, scope, expires_at}
  -h, --help              this text

Example:
  kernelgate keypair apikey add AKIAEXAMPLEUSER00001 --scope read --expires-at 2027-12-01T00:00:00Z`,

  'keypair apikey list': `Usage: kernelgate keypair apikey list ACCESS_KEY [--dir DIR | --config FILE] [--json]

Lists the keypair's API keys: id, scope, created_at, expires_at. The keys themselves are never stored.

Options:
      --dir DIR       keypair folder (default ./keypairs)
  -c, --config FILE   use the keypair folder of this config file
      --json          one JSON array
  -h, --help          this text

Example:
  kernelgate keypair apikey list AKIAEXAMPLEUSER00001 --json`,

  'keypair apikey revoke': `Usage: kernelgate keypair apikey revoke ACCESS_KEY ID [--dir DIR | --config FILE]

Removes the API key with this id from the keypair file; the gateway refuses it from the next request.

Options:
      --dir DIR       keypair folder (default ./keypairs)
  -c, --config FILE   use the keypair folder of this config file
  -h, --help          this text

Example:
  kernelgate keypair apikey revoke AKIAEXAMPLEUSER00001 k7Qm2x`,

  sign: `Usage: kernelgate sign METHOD /PATH [options]

Signs one request with the Backend.AI scheme, sends it and prints the answer like curl. The keypair
comes from -k FILE or KERNELGATE_ACCESS_KEY / KERNELGATE_SECRET_KEY (BACKEND_ACCESS_KEY /
BACKEND_SECRET_KEY too); the endpoint from --endpoint, KERNELGATE_ENDPOINT, BACKEND_ENDPOINT, else
http://127.0.0.1:8080.

Options:
  -d, --data JSON|@FILE        a body (JSON unless --content-type says otherwise)
      --data-binary @FILE      a file as the body (image types from the extension)
      --content-type TYPE      the body's Content-Type
  -H, --header 'Name: value'   an extra header (repeatable)
      --endpoint URL           the gateway
  -k, --keypair FILE           a keypair file
  -i, --include                print the status line and headers too
      --headers-only           print only the signed headers (for curl); nothing is sent
      --sign-method M          HMAC-SHA256 (default), HMAC-SHA384, HMAC-SHA512, ...
      --api-version V          X-BackendAI-Version to sign
      --body-hash MODE         strict (default) or backendai
  -f, --fail                   exit 22 on an HTTP error status
      --all                    GET a paged collection: follow each rel="next" link and print every
                               page's body on its own line (jq -s joins them)
  -h, --help                   this text

Example:
  kernelgate sign POST /session --data '{"name":"ocr1","image":"ocr"}'
  kernelgate sign GET '/session?limit=1000' --all | jq -s 'map(.sessions) | add'`,

  proxy: `Usage: kernelgate proxy -k KEYPAIR.toml [options]

The server-side signing proxy: public front-ends call it without credentials; it signs each allowed
request with a keypair that stays on the server. The keypair may also come from
KERNELGATE_ACCESS_KEY / KERNELGATE_SECRET_KEY.

Options:
  -k, --keypair FILE          the keypair to sign with (a user keypair)
      --upstream URL          the gateway (default http://127.0.0.1:8080)
      --host ADDR             listen address (default 127.0.0.1)
      --port N                listen port (default 8081)
      --allow /a,/b           path prefixes the public may reach (default /session,/auth/test)
      --client-limit N        requests per visitor per window (default 600)
      --client-window S       that window in seconds (default 60)
      --trusted-proxies LIST  addresses/CIDRs whose X-Forwarded-For the proxy believes (default none)
      --allow-admin           accept an admin or superadmin keypair (refused otherwise)
      --allow-owner           pass owner_access_key on (stripped from queries and JSON bodies otherwise)
      --auth apikey,oidc      per-visitor identity: each visitor sends its own API key (x-api-key, or a
                              DeepStack api_key / admin_key form field) or bearer token, and the request is
                              signed with that credential's keypair from the folder (no -k needed); form
                              credentials are removed from the body before it is forwarded
      --config FILE           a gateway config: its [[auth.oidc]] issuers (needed for oidc) and
                              [keypairs] dir
      --dir DIR               keypair folder for --auth (default: the config's, else ./keypairs)
  -h, --help                  this text

Example:
  kernelgate proxy -k /etc/kernelgate/web.toml --upstream http://127.0.0.1:8080 --port 8081`,

  model: `Usage: kernelgate model <upload|list|remove|backup|restore> [options]

Manages custom models through the gateway's /models API; needs an admin keypair (-k FILE or
KERNELGATE_ACCESS_KEY / KERNELGATE_SECRET_KEY) and the endpoint (--endpoint or KERNELGATE_ENDPOINT).

Subcommands:
  upload    --config CONFIG.json --onnx MODEL.onnx   add or replace a model
  list                                               the models
  remove    NAME                                     delete a model
  backup    [--zip FILE]                             every model with its config, as JSON on stdout
                                                     (or as a zip file)
  restore   BACKUP.json|BACKUP.zip                   load a backup, all or nothing

Run "kernelgate model <subcommand> --help" for its options.

Example:
  kernelgate model list -k examples/keypairs/AKIAEXAMPLEADMIN0001.toml`,
};

const MODEL_COMMON = `      --endpoint URL      the gateway (default KERNELGATE_ENDPOINT, else http://127.0.0.1:8080)
  -k, --keypair FILE      an admin keypair file (default: the environment)
  -h, --help              this text`;

HELP['model upload'] = `Usage: kernelgate model upload --config CONFIG.json --onnx MODEL.onnx [options]

Uploads a model (POST /models); the same name again replaces it.

Options:
      --config FILE       the model's JSON config (name, task, input, normalize, labels)
      --onnx FILE         the ONNX file
${MODEL_COMMON}

Example:
  kernelgate model upload --config textdir.json --onnx textdir.onnx -k admin.toml`;
HELP['model list'] = `Usage: kernelgate model list [options]

Lists the custom models (GET /models).

Options:
${MODEL_COMMON}

Example:
  kernelgate model list -k admin.toml`;
HELP['model remove'] = `Usage: kernelgate model remove NAME [options]

Deletes a custom model (DELETE /models/NAME).

Options:
${MODEL_COMMON}

Example:
  kernelgate model remove textdir -k admin.toml`;
HELP['model backup'] = `Usage: kernelgate model backup [--zip FILE] [options] > backup.json

Prints every custom model with its config as one JSON document (GET /models/backup), or with
--zip writes the zip form (the same archive as DeepStack's /v1/backup) to FILE.

Options:
      --zip FILE          write the zip backup to FILE instead
${MODEL_COMMON}

Example:
  kernelgate model backup -k admin.toml > models-backup.json
  kernelgate model backup --zip models.zip -k admin.toml`;
HELP['model restore'] = `Usage: kernelgate model restore BACKUP.json|BACKUP.zip [options]

Loads a backup made by "kernelgate model backup" (JSON, or the zip of --zip or /v1/backup) through
POST /models/restore. All or nothing: if any model fails its checks, nothing changes.

Options:
${MODEL_COMMON}

Example:
  kernelgate model restore models-backup.json -k admin.toml`;

/** Every command and subcommand that has a help text (for tests and `kernelgate help`). */
export const HELP_TOPICS: readonly string[] = Object.keys(HELP);

/** True when the arguments ask for help (before a `--`). */
export function wantsHelp(argv: readonly string[]): boolean {
  for (const arg of argv) {
    if (arg === '--') return false;
    if (arg === '--help' || arg === '-h') return true;
  }
  return false;
}

/** The help text of `command` and, where it has subcommands, of the first positional that names one. */
export function helpFor(command: string, argv: readonly string[]): string | undefined {
  const subs = argv.filter((a) => !a.startsWith('-')).slice(0, 2);
  for (let n = subs.length; n > 0; n--) {
    const text = HELP[[command, ...subs.slice(0, n)].join(' ')];
    if (text !== undefined) return text;
  }
  return HELP[command];
}
