/**
 * Amounts held at once, in all and per client address (bytes of bodies being read, uploads being spooled):
 * what the body budget (body-budget.ts) and the upload slots (upload-slots.ts) both bound before a byte of a
 * body is read.
 */
export class AddressQuota {
  readonly #byAddress = new Map<string, number>();
  #held = 0;

  constructor(
    readonly total: number,
    readonly perAddress: number,
  ) {}

  get held(): number {
    return this.#held;
  }

  /** Holds `amount` for `address` and returns its release (idempotent), or which bound it would pass. */
  take(address: string, amount: number): (() => void) | 'address' | 'total' {
    const mine = this.#byAddress.get(address) ?? 0;
    if (mine + amount > this.perAddress) return 'address';
    if (this.#held + amount > this.total) return 'total';
    this.#held += amount;
    this.#byAddress.set(address, mine + amount);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.#held -= amount;
      const left = (this.#byAddress.get(address) ?? amount) - amount;
      if (left > 0) this.#byAddress.set(address, left);
      else this.#byAddress.delete(address);
    };
  }
}
