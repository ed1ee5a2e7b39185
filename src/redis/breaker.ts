/**
 * Fails fast for a moment after a Redis command timed out, so that while Redis
 * hangs each request waits for one timeout at most once per cool-off instead of
 * every request waiting its full command timeout. After the cool-off one request
 * probes (half-open); the others still fail at once until it has an answer.
 */
export class CircuitBreaker {
  private openUntil = 0;
  /** Set after a timeout; cleared by the first command that does not time out. */
  private tripped = false;
  private probing = false;
  constructor(private readonly coolOffMs = 1000) {}

  async run<T>(op: () => Promise<T>): Promise<T> {
    if (Date.now() < this.openUntil || this.probing) throw new Error('circuit open: Redis timed out moments ago');
    const probe = this.tripped;
    if (probe) this.probing = true;
    try {
      const value = await op();
      this.tripped = false;
      return value;
    } catch (error) {
      if (/timed out/i.test((error as Error)?.message ?? '')) {
        this.tripped = true;
        this.openUntil = Date.now() + this.coolOffMs;
      } else {
        this.tripped = false;
      }
      throw error;
    } finally {
      if (probe) this.probing = false;
    }
  }
}
