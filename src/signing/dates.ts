import { LRUCache } from 'lru-cache';
import { DateTime } from 'luxon';

export interface SigningDate {
  /** Milliseconds since the epoch. */
  epochMs: number;
  /** `YYYYMMDD` of the date in its own offset: the first key-derivation input. */
  keyDate: string;
}

/** Longest date we bother parsing; anything longer is junk. */
const MAX_DATE_LENGTH = 64;
/** UTC-12:00 (Baker Island) to UTC+14:00 (Kiribati): ±14:00 covers every real offset. */
export const MAX_OFFSET_MINUTES = 14 * 60;
// ISO 8601 with a time part (extended or basic). Date-only values are refused:
// a signature must be bound to a moment, not a day.
const ISO_SHAPE = /^[+-]?\d{4,6}-?(?:\d{2}-?\d{2}|W\d{2}-?\d|\d{3})T\d{2}/;
const RFC_SHAPE = /^(?:[A-Za-z]{3}, )?\d{1,2} [A-Za-z]{3} \d{4} \d{2}:\d{2}(?::\d{2})? /;

// The forms real clients send, parsed without luxon (which costs ~25 µs a date).
// Separators are consistent within the date and within the time, as luxon requires.
const ISO_FAST = /^(\d{4})(-?)(\d{2})\2(\d{2})T(\d{2})(:?)(\d{2})\6(\d{2})(?:[.,](\d{1,9}))?(Z|z|[+-]\d{2}(?::?\d{2})?)?$/;
const RFC1123_FAST = /^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), (\d{2}) (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) (\d{4}) (\d{2}):(\d{2}):(\d{2}) GMT$/;
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const WEEKDAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];

/** Epoch ms of a wall-clock time, or undefined when a field is out of range. */
function utcMillis(y: number, mo: number, d: number, h: number, mi: number, s: number, ms: number): number | undefined {
  // Years below 1000 are rare and Date.UTC maps 0-99 to 19xx: leave them to luxon.
  if (y < 1000 || mo < 1 || mo > 12 || d < 1 || h > 23 || mi > 59 || s > 59) return undefined;
  if (d > new Date(Date.UTC(y, mo, 0)).getUTCDate()) return undefined;
  return Date.UTC(y, mo - 1, d, h, mi, s, ms);
}

/** parseFast's verdict for a date that must not reach luxon either. */
const REFUSED = 'refused';

/** undefined: not a fast form (luxon decides); null: a fast form out of range (luxon decides); REFUSED: refused. */
function parseFast(raw: string): SigningDate | null | undefined | typeof REFUSED {
  const iso = ISO_FAST.exec(raw);
  if (iso) {
    const [, y, , mo, d, h, , mi, sec, frac, zone] = iso;
    const local = utcMillis(+y, +mo, +d, +h, +mi, +sec, frac ? Number(frac.slice(0, 3).padEnd(3, '0')) : 0);
    if (local === undefined) return null;
    let offsetMin = 0;
    if (zone !== undefined && zone !== 'Z' && zone !== 'z') {
      const digits = zone.slice(1).replace(':', '');
      const oh = Number(digits.slice(0, 2));
      const om = digits.length > 2 ? Number(digits.slice(2)) : 0;
      offsetMin = (zone[0] === '-' ? -1 : 1) * (oh * 60 + om);
      // Real offsets lie within ±14:00; a wider one would stretch one key date over many days.
      if (om > 59 || Math.abs(offsetMin) > MAX_OFFSET_MINUTES) return REFUSED;
    }
    // The key date is the calendar day as written, i.e. in the date's own offset.
    return { epochMs: local - offsetMin * 60_000, keyDate: `${y}${mo}${d}` };
  }
  const rfc = RFC1123_FAST.exec(raw);
  if (rfc) {
    const [, weekday, d, mon, y, h, mi, sec] = rfc;
    const mo = MONTHS.indexOf(mon) + 1;
    const epochMs = utcMillis(+y, mo, +d, +h, +mi, +sec, 0);
    if (epochMs === undefined || WEEKDAYS[new Date(epochMs).getUTCDay()] !== weekday) return null;
    return { epochMs, keyDate: `${y}${String(mo).padStart(2, '0')}${d}` };
  }
  return undefined;
}

/**
 * Parses a signing date: ISO 8601 (extended or basic, fractions allowed, no zone
 * means UTC) or RFC 1123 / RFC 2822. Returns undefined when it is not one.
 */
export function parseSigningDate(raw: string): SigningDate | undefined {
  if (raw.length === 0 || raw.length > MAX_DATE_LENGTH) return undefined;
  const fast = parseFast(raw);
  if (fast === REFUSED) return undefined;
  if (fast) return fast;
  let parsed: DateTime | undefined;
  if (ISO_SHAPE.test(raw)) {
    parsed = DateTime.fromISO(raw, { zone: 'utc', setZone: true });
  } else if (RFC_SHAPE.test(raw)) {
    // luxon knows GMT and UT; clients also write UTC.
    parsed = DateTime.fromRFC2822(raw.replace(/ UTC$/, ' GMT'), { zone: 'utc', setZone: true });
  }
  // Years outside 0000-9999 would give a key date that is not YYYYMMDD.
  if (parsed === undefined || !parsed.isValid || parsed.year < 0 || parsed.year > 9999) return undefined;
  if (!(Math.abs(parsed.offset) <= MAX_OFFSET_MINUTES)) return undefined;
  const epochMs = parsed.toMillis();
  if (!Number.isFinite(epochMs)) return undefined;
  return { epochMs, keyDate: parsed.toFormat('yyyyMMdd') };
}

/**
 * Date parsing is the slowest step of verification, and clients sending at a
 * steady rate repeat the same Date value many times a second: remember the
 * last few. Bounded, so junk dates cannot grow it.
 *
 * lru-cache rather than a Map with FIFO eviction: with a fresh Date on every request (the Python SDK
 * sends microseconds) every call misses and evicts, and deleting a Map's oldest entry leaves holes that
 * the next `keys().next()` walks over. bench/caches.ts, three runs on a loaded 2-core machine: a miss
 * 6.2-8.0 µs with the Map, 3.7-5.7 µs with lru-cache; a hit 0.019-0.038 µs against 0.035-0.055 µs.
 */
export class SigningDateCache {
  /** `false`: a value that is no date (lru-cache stores no undefined or null). */
  private readonly entries: LRUCache<string, SigningDate | false>;
  constructor(capacity = 4096) {
    this.entries = new LRUCache({ max: capacity });
  }

  parse(raw: string): SigningDate | undefined {
    const hit = this.entries.get(raw);
    if (hit !== undefined) return hit || undefined;
    const parsed = parseSigningDate(raw);
    this.entries.set(raw, parsed ?? false);
    return parsed;
  }
}

/** Formats a moment the way the official Python SDK does: `isoformat()` with microseconds. */
export function formatIsoDate(at: Date = new Date()): string {
  return at.toISOString().replace(/\.(\d{3})Z$/, '.$1000+00:00');
}
