/** A compute session ("kernel") as every replica sees it. */
export interface SessionRecord {
  sessionId: string;
  sessionName: string;
  /** Access key of the owning keypair. */
  owner: string;
  /** Model the session runs (`image` in Backend.AI terms), e.g. `ocr`. */
  image: string;
  status: 'RUNNING';
  /** Access key that created it (an admin acting for the owner, or the owner). */
  createdBy: string;
  createdAt: number;
  lastUsedAt: number;
  config: Record<string, unknown>;
}

export type CreateOutcome =
  | { state: 'created'; session: SessionRecord }
  | { state: 'exists'; session: SessionRecord }
  | { state: 'quota'; active: number };

/**
 * Sessions keyed by (owner, name). Idle sessions expire lazily on any access
 * to their owner's sessions, so no replica needs to run a reaper for the
 * answers to be right; in Redis an owner who went quiet vanishes by TTL.
 */
export interface SessionStore {
  readonly kind: 'memory' | 'redis';
  /** Atomic: an existing name wins, else the owner's quota is checked, else it is created. */
  create(record: SessionRecord, maxSessions: number, idleMs: number): Promise<CreateOutcome>;
  get(owner: string, name: string, idleMs: number): Promise<SessionRecord | undefined>;
  list(owner: string, idleMs: number): Promise<SessionRecord[]>;
  /** Marks use, so the idle timer restarts. */
  touch(owner: string, name: string, now: number): Promise<void>;
  delete(owner: string, name: string): Promise<boolean>;
  /** For /health: can sessions be served right now? */
  health(): Promise<{ status: 'ok' | 'degraded'; store: string; reason?: string }>;
  close(): Promise<void>;
}
