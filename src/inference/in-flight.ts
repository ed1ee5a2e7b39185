/**
 * Requests inside a kernel, counted until their jobs really end: ORT cannot stop a run, so a job outlives a
 * caller answered early (timeout, disconnect), and retiring the kernel must wait for that job, not the caller.
 * Shared by the built-in kernels and the uploaded models' kernel.
 */
export class InFlight {
  #count = 0;
  #idle: (() => void) | undefined;
  #drained: Promise<void> | undefined;

  get count(): number {
    return this.#count;
  }

  /**
   * Runs `body`, counted until it returns and, when it handed a job to `track`, until that job settles.
   * `track` returns the job unchanged.
   */
  async around<T>(body: (track: <J>(job: Promise<J>) => Promise<J>) => Promise<T>): Promise<T> {
    this.#count++;
    let ended: Promise<unknown> | undefined;
    try {
      return await body((job) => {
        ended = job.catch(() => undefined);
        return job;
      });
    } finally {
      if (ended) void ended.then(() => this.#leave());
      else this.#leave();
    }
  }

  /** Resolves once nothing is in flight; called again, the same promise. */
  drained(): Promise<void> {
    this.#drained ??= this.#count === 0 ? Promise.resolve() : new Promise<void>((resolve) => (this.#idle = resolve));
    return this.#drained;
  }

  #leave(): void {
    this.#count--;
    if (this.#count === 0) this.#idle?.();
  }
}
