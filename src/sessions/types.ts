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

/** A session's place in listings: neither changes while it lives (names are unique per owner). */
export interface SessionKey {
  createdAt: number;
  name: string;
}

export interface SessionPage {
  sessions: SessionRecord[];
  more: boolean;
}

/** (createdAt, name) order; names compare by UTF-16 code unit, which for their ASCII format is Redis's byte order. */
export function compareSessionKeys(a: SessionKey, b: SessionKey): number {
  if (a.createdAt !== b.createdAt) return a.createdAt - b.createdAt;
  return a.name === b.name ? 0 : a.name < b.name ? -1 : 1;
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
  /**
   * Up to `limit` live sessions in (createdAt, name) order, strictly after `after`; `more` when others
   * follow. Paging by this key (never by offset) shows every session that lives throughout exactly once.
   */
  page(owner: string, idleMs: number, after: SessionKey | undefined, limit: number): Promise<SessionPage>;
  /** Marks use, so the idle timer restarts. */
  touch(owner: string, name: string, now: number): Promise<void>;
  delete(owner: string, name: string): Promise<boolean>;
  /** For /health: can sessions be served right now? */
  health(): Promise<{ status: 'ok' | 'degraded'; store: string; reason?: string }>;
  close(): Promise<void>;
}
