/**
 * The target of a `Link` header's rel="next" (RFC 8288), or undefined. Link values are
 * `<uri-reference>; param; ...`, comma-separated; `rel` may be quoted and may hold several
 * space-separated relation types. One left-to-right scan (no backtracking), so any header is cheap.
 */
export function nextLink(header: string | null | undefined): string | undefined {
  if (!header) return undefined;
  for (const [, target, params] of header.matchAll(/<([^>]*)>([^<]*)/g)) {
    for (const [, quoted, bare] of params!.matchAll(/;\s*rel\s*=\s*(?:"([^"]*)"|([^\s;,"]+))/gi)) {
      if ((quoted ?? bare ?? '').toLowerCase().split(/\s+/).includes('next')) return target;
    }
  }
  return undefined;
}
