import { compareSessionKeys, type CreateOutcome, type SessionKey, type SessionPage, type SessionRecord, type SessionStore } from './types.js';

/** Sessions in this process only: the embedded default. */
export class MemorySessionStore implements SessionStore {
  readonly kind = 'memory' as const;
  private readonly owners = new Map<string, Map<string, SessionRecord>>();

  constructor(private readonly now: () => number = Date.now) {}

  private live(owner: string, idleMs: number): Map<string, SessionRecord> {
    const sessions = this.owners.get(owner) ?? new Map<string, SessionRecord>();
    const cutoff = this.now() - idleMs;
    for (const [name, s] of sessions) if (s.lastUsedAt <= cutoff) sessions.delete(name);
    if (sessions.size === 0) this.owners.delete(owner);
    return sessions;
  }

  async create(record: SessionRecord, maxSessions: number, idleMs: number): Promise<CreateOutcome> {
    const sessions = this.live(record.owner, idleMs);
    const existing = sessions.get(record.sessionName);
    if (existing) return { state: 'exists', session: existing };
    if (sessions.size >= maxSessions) return { state: 'quota', active: sessions.size };
    sessions.set(record.sessionName, record);
    this.owners.set(record.owner, sessions);
    return { state: 'created', session: record };
  }

  async get(owner: string, name: string, idleMs: number): Promise<SessionRecord | undefined> {
    return this.live(owner, idleMs).get(name);
  }

  async list(owner: string, idleMs: number): Promise<SessionRecord[]> {
    return [...this.live(owner, idleMs).values()].sort((a, b) => a.createdAt - b.createdAt);
  }

  async page(owner: string, idleMs: number, after: SessionKey | undefined, limit: number): Promise<SessionPage> {
    const key = (s: SessionRecord): SessionKey => ({ createdAt: s.createdAt, name: s.sessionName });
    const rest = [...this.live(owner, idleMs).values()]
      .filter((s) => after === undefined || compareSessionKeys(key(s), after) > 0)
      .sort((a, b) => compareSessionKeys(key(a), key(b)));
    return { sessions: rest.slice(0, limit), more: rest.length > limit };
  }

  async touch(owner: string, name: string, now: number): Promise<void> {
    const s = this.owners.get(owner)?.get(name);
    if (s) s.lastUsedAt = Math.max(s.lastUsedAt, now);
  }

  async delete(owner: string, name: string): Promise<boolean> {
    const sessions = this.owners.get(owner);
    const deleted = sessions?.delete(name) ?? false;
    if (sessions?.size === 0) this.owners.delete(owner);
    return deleted;
  }

  async health() {
    return { status: 'ok' as const, store: 'memory' };
  }

  async close(): Promise<void> {}
}
