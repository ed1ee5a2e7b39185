/**
 * Idempotent retries: a request carrying an Idempotency-Key (or
 * X-BackendAI-Client-Token) runs at most once per (access key, token); retries
 * get the first response back instead of running it again.
 */

/** A response as the gateway sent it, kept for replay. */
export interface StoredResponse {
  status: number;
  headers: Record<string, string>;
  /** Body bytes, base64. */
  body: string;
  /**
   * Set on replay when the original response was too large to keep (body over
   * the store's maxBodyBytes, 1 MiB by default): status and headers are the
   * original ones, `body` is empty. The request is still NOT executed again;
   * the caller should answer the retry with the status and no body (or a
   * problem document saying the result cannot be replayed), never re-run it.
   */
  uncacheable?: boolean;
}

export type Begin =
  /** First time: the caller runs the request, then calls complete() (or abort()). */
  | { state: 'started' }
  /** Already ran: answer with this response. */
  | { state: 'replay'; response: StoredResponse }
  /** Another call with the same request is running now (→ 409 idempotency-conflict). */
  | { state: 'in-progress' }
  /** The token was used for a different request (→ 422 idempotency-mismatch). */
  | { state: 'mismatch' };

export interface IdempotencyStore {
  /**
   * Atomically claims (scope, token) for the request identified by `fingerprint`.
   * The claim is a lease of min(leaseSeconds, ttlSeconds) so a replica that
   * crashes mid-request does not block the token for the whole ttl.
   */
  begin(scope: string, token: string, fingerprint: string, ttlSeconds: number): Promise<Begin>;
  /** Stores the response for replay for `ttlSeconds` (24 h in the gateway). */
  complete(scope: string, token: string, fingerprint: string, response: StoredResponse, ttlSeconds: number): Promise<void>;
  /** Releases an in-progress claim (e.g. the handler failed with a 5xx) so a retry runs again. Completed entries stay. */
  abort(scope: string, token: string): Promise<void>;
  close(): Promise<void>;
}

export interface IdempotencyLimits {
  /** In-progress lease (default 60 s). */
  leaseSeconds?: number;
  /** Largest body (decoded bytes) kept for replay (default 1 MiB); larger ones are stored as `uncacheable`. */
  maxBodyBytes?: number;
}
