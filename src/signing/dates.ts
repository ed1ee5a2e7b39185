import { DateTime } from 'luxon';

export interface SigningDate {
  /** Milliseconds since the epoch. */
  epochMs: number;
  /** `YYYYMMDD` of the date in its own offset: the first key-derivation input. */
  keyDate: string;
}

/** Longest date we bother parsing; anything longer is junk. */
const MAX_DATE_LENGTH = 64;
// ISO 8601 with a time part (extended or basic). Date-only values are refused:
// a signature must be bound to a moment, not a day.
const ISO_SHAPE = /^[+-]?\d{4,6}-?(?:\d{2}-?\d{2}|W\d{2}-?\d|\d{3})T\d{2}/;
const RFC_SHAPE = /^(?:[A-Za-z]{3}, )?\d{1,2} [A-Za-z]{3} \d{4} \d{2}:\d{2}(?::\d{2})? /;

/**
 * Parses a signing date: ISO 8601 (extended or basic, fractions allowed, no zone
 * means UTC) or RFC 1123 / RFC 2822. Returns undefined when it is not one.
 */
export function parseSigningDate(raw: string): SigningDate | undefined {
  if (raw.length === 0 || raw.length > MAX_DATE_LENGTH) return undefined;
  let parsed: DateTime | undefined;
  if (ISO_SHAPE.test(raw)) {
    parsed = DateTime.fromISO(raw, { zone: 'utc', setZone: true });
  } else if (RFC_SHAPE.test(raw)) {
    // luxon knows GMT and UT; clients also write UTC.
    parsed = DateTime.fromRFC2822(raw.replace(/ UTC$/, ' GMT'), { zone: 'utc', setZone: true });
  }
  // Years outside 0000-9999 would give a key date that is not YYYYMMDD.
  if (parsed === undefined || !parsed.isValid || parsed.year < 0 || parsed.year > 9999) return undefined;
  const epochMs = parsed.toMillis();
  if (!Number.isFinite(epochMs)) return undefined;
  return { epochMs, keyDate: parsed.toFormat('yyyyMMdd') };
}

/**
 * Date parsing is the slowest step of verification, and clients sending at a
 * steady rate repeat the same Date value many times a second: remember the
 * last few. Bounded, so junk dates cannot grow it.
 */
export class SigningDateCache {
  private readonly entries = new Map<string, SigningDate | null>();
  constructor(private readonly capacity = 4096) {}

  parse(raw: string): SigningDate | undefined {
    const hit = this.entries.get(raw);
    if (hit !== undefined) return hit ?? undefined;
    const parsed = parseSigningDate(raw);
    if (this.entries.size >= this.capacity) {
      // Maps iterate in insertion order: dropping the first entry is FIFO eviction.
      const oldest = this.entries.keys().next().value as string;
      this.entries.delete(oldest);
    }
    this.entries.set(raw, parsed ?? null);
    return parsed;
  }
}

/** Formats a moment the way the official Python SDK does: `isoformat()` with microseconds. */
export function formatIsoDate(at: Date = new Date()): string {
  return at.toISOString().replace(/\.(\d{3})Z$/, '.$1000+00:00');
}
