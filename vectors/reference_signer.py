#!/usr/bin/env python3
"""Independent reference signer for kernelgate's Backend.AI-style HMAC request signing.

Standard library only. Run:

    python3 vectors/reference_signer.py           # (re)write vectors/signing-vectors.json
    python3 vectors/reference_signer.py --check   # recompute every vector in the file; exit 1 on mismatch

The scheme (see /work/shared/DESIGN.md, "Signing (Backend.AI scheme)" and vectors/README.md):

    Authorization: BackendAI signMethod=HMAC-SHA256, credential=<access key>:<hex signature>
    (legacy: "Sorna signMethod=..., credential=..." with X-Sorna-Date / X-Sorna-Version)

    string_to_sign = "\n".join([
        METHOD,                                   # upper case
        target,                                   # path + query exactly as sent (still percent-encoded)
        raw date,                                 # Date, else X-BackendAI-Date, else X-Sorna-Date (trimmed)
        "host:" + Host,
        "content-type:" + media type (lower case, parameters dropped, trimmed),
        "x-backendai-version:" + (X-BackendAI-Version or X-Sorna-Version),
        hexdigest(body),                          # same hash as the sign method
    ])
    signing_key = HMAC(HMAC(secret, YYYYMMDD of the date in its own offset), host)
    signature   = hex(HMAC(signing_key, string_to_sign))
"""

import base64
import datetime
import email.utils
import hashlib
import hmac
import json
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
VECTORS_PATH = os.path.join(HERE, "signing-vectors.json")

SIGN_METHODS = {
    "HMAC-SHA1": "sha1",
    "HMAC-SHA256": "sha256",
    "HMAC-SHA384": "sha384",
    "HMAC-SHA512": "sha512",
}

# Characters trimmed from both ends of every header value.
TRIM_CHARS = "\n\r \t"


# ---------------------------------------------------------------------------
# Header helpers
# ---------------------------------------------------------------------------

def trim(value):
    """Trim \\n, \\r, space and tab from both ends (and nothing else)."""
    return value.strip(TRIM_CHARS)


def header(headers, name):
    """First value of header `name` (case-insensitive) from an ordered [[name, value], ...] list,
    trimmed; None when absent."""
    lname = name.lower()
    for hname, hvalue in headers:
        if hname.lower() == lname:
            return trim(hvalue)
    return None


def canonical_content_type(value):
    """Media type, lower case, parameters (after ';') removed, trimmed. Absent -> ''."""
    if value is None:
        return ""
    return trim(value.split(";", 1)[0]).lower()


def raw_date(headers):
    """The raw date string signed on line 3: Date, else X-BackendAI-Date, else X-Sorna-Date."""
    for name in ("Date", "X-BackendAI-Date", "X-Sorna-Date"):
        v = header(headers, name)
        if v:  # present and non-empty
            return v
    raise ValueError("no date header")


def api_version(headers):
    v = header(headers, "X-BackendAI-Version")
    if not v:
        v = header(headers, "X-Sorna-Version")
    if not v:
        raise ValueError("no version header")
    return v


# ---------------------------------------------------------------------------
# Date parsing
# ---------------------------------------------------------------------------

# ISO 8601: date and time each in extended (2024-05-02, 10:11:12) or basic (20240502, 101112) form,
# optional fraction ('.' or ','), zone Z / +HH:MM / +HHMM / none (= UTC).
_ISO_RE = re.compile(
    r"^(?P<y>\d{4})(?P<ds>-?)(?P<mo>\d{2})(?P=ds)(?P<d>\d{2})"
    r"T(?P<h>\d{2})(?P<ts>:?)(?P<mi>\d{2})(?P=ts)(?P<s>\d{2})"
    r"(?:[.,](?P<frac>\d{1,9}))?"
    r"(?P<tz>Z|z|[+-]\d{2}:\d{2}|[+-]\d{4})?$"
)

# RFC 1123 (IMF-fixdate), also with a numeric offset instead of GMT.
_RFC1123_RE = re.compile(
    r"^(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{1,2} "
    r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} "
    r"\d{2}:\d{2}:\d{2} (?:GMT|UTC|[+-]\d{4})$"
)


def parse_date(raw):
    """Parse a signed date into an aware datetime that keeps the date's own UTC offset.
    A date without a zone is UTC."""
    m = _ISO_RE.match(raw)
    if m:
        tz = m.group("tz")
        if tz is None or tz in ("Z", "z"):
            tzinfo = datetime.timezone.utc
        else:
            sign = 1 if tz[0] == "+" else -1
            digits = tz[1:].replace(":", "")
            offset = datetime.timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
            tzinfo = datetime.timezone(sign * offset)
        frac = m.group("frac") or "0"
        micro = int((frac + "000000")[:6])
        return datetime.datetime(
            int(m.group("y")), int(m.group("mo")), int(m.group("d")),
            int(m.group("h")), int(m.group("mi")), int(m.group("s")), micro, tzinfo=tzinfo,
        )
    if _RFC1123_RE.match(raw):
        dt = email.utils.parsedate_to_datetime(raw)
        if dt.tzinfo is None:  # "-0000" means UTC too
            dt = dt.replace(tzinfo=datetime.timezone.utc)
        return dt
    raise ValueError("unparseable date: %r" % raw)


def key_date(raw):
    """YYYYMMDD of the date in the date's own offset (not converted to UTC)."""
    return parse_date(raw).strftime("%Y%m%d")


# ---------------------------------------------------------------------------
# Signing
# ---------------------------------------------------------------------------

def hash_name(sign_method):
    try:
        return SIGN_METHODS[sign_method]
    except KeyError:
        raise ValueError("unsupported sign method %r" % sign_method)


def body_hash(sign_method, body):
    return hashlib.new(hash_name(sign_method), body).hexdigest()


def canonical_string(method, target, headers, signed_body_hash, version_label="x-backendai-version"):
    """The 7-line string to sign. `version_label` is "x-backendai-version" in kernelgate's scheme;
    "x-sorna-version" is only used to reproduce the historical Backend.AI docs example."""
    lines = [
        method.upper(),
        target,
        raw_date(headers),
        "host:" + (header(headers, "Host") or ""),
        "content-type:" + canonical_content_type(header(headers, "Content-Type")),
        version_label + ":" + api_version(headers),
        signed_body_hash,
    ]
    return "\n".join(lines)


def signing_key(sign_method, secret_key, kdate, host):
    h = hash_name(sign_method)
    k1 = hmac.new(secret_key.encode("utf-8"), kdate.encode("utf-8"), h).digest()
    return hmac.new(k1, host.encode("utf-8"), h).digest()


def signature(sign_method, key, string_to_sign):
    return hmac.new(key, string_to_sign.encode("utf-8"), hash_name(sign_method)).hexdigest()


def authorization(auth_type, sign_method, access_key, sig):
    return "%s signMethod=%s, credential=%s:%s" % (auth_type, sign_method, access_key, sig)


def sign(sign_method, secret_key, method, target, headers, body, body_hash_mode="strict",
         version_label="x-backendai-version"):
    """Client side: returns a dict with every intermediate value."""
    if body_hash_mode == "strict":
        bh = body_hash(sign_method, body)
    elif body_hash_mode == "backendai":
        bh = body_hash(sign_method, b"")  # what the official SDK signs for >= v4.20181215
    else:
        raise ValueError("unknown body_hash_mode %r" % body_hash_mode)
    date_used = raw_date(headers)
    kdate = key_date(date_used)
    host = header(headers, "Host") or ""
    sts = canonical_string(method, target, headers, bh, version_label)
    key = signing_key(sign_method, secret_key, kdate, host)
    return {
        "date_used": date_used,
        "key_date": kdate,
        "signed_body_hash": bh,
        "string_to_sign": sts,
        "signing_key_hex": key.hex(),
        "signature": signature(sign_method, key, sts),
    }


def verify(sign_method, secret_key, method, target, headers, body, presented_sig,
           body_hash_mode="strict", version_label="x-backendai-version"):
    """Server side: strict accepts only the real body hash; backendai also accepts the empty-body hash."""
    candidates = [body_hash(sign_method, body)]
    if body_hash_mode == "backendai":
        candidates.append(body_hash(sign_method, b""))
    kdate = key_date(raw_date(headers))
    key = signing_key(sign_method, secret_key, kdate, header(headers, "Host") or "")
    for bh in candidates:
        expected = signature(sign_method, key, canonical_string(method, target, headers, bh, version_label))
        if hmac.compare_digest(expected, presented_sig.lower()):
            return True
    return False


# ---------------------------------------------------------------------------
# Vector definitions
# ---------------------------------------------------------------------------

KEYPAIRS = {
    "example": ("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
    "alice": ("AKIAKGATEALICE000001", "q7Hm2ZtW9xVb4NcJ0sLp3RkYf8DgE6uA1oTi5MwQ"),
    "bob": ("AKIA7Q2W9E4R1T8Y5U3I", "Xr+4kP/9vN2mZ8wQ1tB6yH3cJ7sL0dF5gA9eK+uV"),
    "carol": ("AKIAZZ9CAROLKEY0TEST", "0123456789abcdefghijABCDEFGHIJ/+_-.~=!@#"),
}

DOCS_SIGNATURE = "022ae894b4ecce097bea6eca9a97c41cd17e8aff545800cd696112cc387059cf"

# Vectors whose line 6 is labelled "x-sorna-version" (historical Backend.AI form, see README).
SORNA_LABEL_VECTORS = {"backendai-docs-example-original-v1"}

# A 1x1 PNG (binary, contains NUL and high bytes).
PNG_1X1 = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)
ALL_BYTES = bytes(range(256))
JSON_BODY = json.dumps(
    {"name": "ocr-job-01", "image": "ocr", "config": {"lang": "ko", "note": "한글 ✓"}},
    ensure_ascii=False, separators=(",", ":"), sort_keys=True,
).encode("utf-8")
FORM_BODY = b"name=my+session&image=ocr&note=a%26b%3Dc&empty=&tag=x&tag=y"
BOUNDARY = "----kernelgateBoundary7MA4YWxkTrZu0gW"
MULTIPART_BODY = (
    b"--" + BOUNDARY.encode() + b"\r\n"
    b'Content-Disposition: form-data; name="options"\r\n'
    b"Content-Type: application/json\r\n\r\n"
    b'{"threshold":0.5}\r\n'
    b"--" + BOUNDARY.encode() + b"\r\n"
    b'Content-Disposition: form-data; name="image"; filename="dot.png"\r\n'
    b"Content-Type: image/png\r\n\r\n"
    + PNG_1X1 + b"\r\n"
    b"--" + BOUNDARY.encode() + b"--\r\n"
)

H_LOCAL = "127.0.0.1:8080"
V8 = "v8.20240915"
V6 = "v6.20220615"
V4 = "v4.20181215"
JSON_CT = "application/json"


def std_headers(date="2024-09-20T08:15:30Z", host=H_LOCAL, ctype=JSON_CT, version=V8,
                date_header="Date", version_header="X-BackendAI-Version"):
    hs = [["Host", host], [date_header, date]]
    if ctype is not None:
        hs.append(["Content-Type", ctype])
    hs.append([version_header, version])
    return hs


def V(name, description, headers, method="GET", target="/auth/test", body=b"", keypair="example",
      sign_method="HMAC-SHA256", mode="strict", auth_type="BackendAI", valid=True, override_sig=None):
    return dict(name=name, description=description, headers=headers, method=method, target=target,
                body=body, keypair=keypair, sign_method=sign_method, mode=mode, auth_type=auth_type,
                valid=valid, override_sig=override_sig)


def definitions():
    d = []
    # --- sign methods -----------------------------------------------------
    for sm, kp in (("HMAC-SHA1", "alice"), ("HMAC-SHA256", "example"),
                   ("HMAC-SHA384", "bob"), ("HMAC-SHA512", "carol")):
        d.append(V("sign-method-%s-get" % sm.lower(),
                   "GET with sign method %s: body hash, key derivation and signature all use %s"
                   % (sm, SIGN_METHODS[sm]),
                   std_headers(), target="/auth/test?echo=hello", keypair=kp, sign_method=sm))
    for sm, kp in (("HMAC-SHA1", "bob"), ("HMAC-SHA384", "carol"), ("HMAC-SHA512", "alice")):
        d.append(V("sign-method-%s-json-post-strict" % sm.lower(),
                   "JSON POST with %s, strict body hash over the exact body bytes" % sm,
                   std_headers(date="2025-02-11T23:59:59Z"), method="POST", target="/session",
                   body=JSON_BODY, keypair=kp, sign_method=sm))
    # --- query encodings ----------------------------------------------------
    qs = [
        ("query-space-percent20", "/auth/test?echo=a%20b", "space encoded as %20, signed as-is"),
        ("query-space-plus", "/auth/test?echo=a+b", "space encoded as '+', signed as-is (not decoded to %20)"),
        ("query-reserved-chars", "/auth/test?echo=%21%2A%27%28%29%3B%3A%40%26%3D%2B%24%2C%2F%3F%23%5B%5D",
         "percent-encoded reserved characters !*'();:@&=+$,/?#[] signed as-is"),
        ("query-unencoded-subdelims", "/auth/test?echo=a:b@c/d?e&x=(1)*!",
         "literal sub-delimiters and '/', '?' inside the query, signed byte for byte"),
        ("query-repeated-keys", "/session?tag=a&tag=b&tag=a", "repeated keys kept in sent order, not sorted or merged"),
        ("query-unsorted-keys", "/session?z=1&a=2&m=3", "keys in non-alphabetical order are not re-sorted"),
        ("query-empty-values", "/session?owner_access_key=&echo=&flag", "empty values and a bare key without '='"),
        ("query-lowercase-percent-hex", "/auth/test?echo=%e2%9c%93%2f", "lower-case percent hex must be signed as-is (not normalised)"),
        ("query-uppercase-percent-hex", "/auth/test?echo=%E2%9C%93%2F", "upper-case percent hex, same decoded value as the lower-case vector but a different signature"),
        ("query-trailing-question-mark", "/auth/test?", "a trailing '?' with an empty query is part of the target"),
        ("query-owner-access-key", "/session?owner_access_key=AKIAKGATEALICE000001&limit=20",
         "admin listing another user's sessions via owner_access_key"),
    ]
    for name, target, desc in qs:
        d.append(V(name, "GET; " + desc, std_headers(date="2024-11-05T14:03:07Z"), target=target))
    # --- paths --------------------------------------------------------------
    d.append(V("path-non-ascii-hangul", "non-ASCII session name sent percent-encoded (UTF-8 of '한글'), signed percent-encoded",
               std_headers(date="2025-06-30T06:00:00Z"), target="/session/%ED%95%9C%EA%B8%80"))
    d.append(V("path-non-ascii-lowercase-hex", "same name as path-non-ascii-hangul with lower-case hex: different target bytes, different signature",
               std_headers(date="2025-06-30T06:00:00Z"), target="/session/%ed%95%9c%ea%b8%80"))
    d.append(V("path-encoded-space-and-slash", "DELETE of a session whose name has an encoded space and an encoded slash",
               std_headers(date="2025-06-30T06:00:00Z"), method="DELETE", target="/session/my%20sess%2Fone"))
    d.append(V("path-root", "GET / (public in the gateway, still signable)", std_headers(), target="/"))
    # --- header name / value variants ---------------------------------------
    d.append(V("header-names-lowercase", "all header names lower case (HTTP/2 style); names are case-insensitive",
               [["host", H_LOCAL], ["date", "2024-09-20T08:15:30Z"], ["content-type", JSON_CT], ["x-backendai-version", V8]]))
    d.append(V("header-names-uppercase-mixed", "upper/mixed-case header names",
               [["HOST", H_LOCAL], ["DATE", "2024-09-20T08:15:30Z"], ["CoNtEnT-TyPe", JSON_CT], ["X-BACKENDAI-VERSION", V8]]))
    d.append(V("header-values-surrounding-whitespace", "values wrapped in spaces and tabs; the signer trims \\n \\r space tab on both ends (host key derivation uses the trimmed host)",
               [["Host", " \t127.0.0.1:8080 "], ["Date", "\t2024-09-20T08:15:30Z  "], ["Content-Type", "  application/json ;  charset=utf-8\t"], ["X-BackendAI-Version", " v8.20240915\t"]],
               method="POST", target="/auth/test", body=b'{"echo":"ws"}'))
    d.append(V("header-order-shuffled", "headers sent in an unusual order; order does not matter to the string to sign",
               [["X-BackendAI-Version", V8], ["Content-Type", JSON_CT], ["Date", "2024-09-20T08:15:30Z"], ["Host", "api.kernelgate.example:443"]]))
    d.append(V("host-plain-dns-name", "Host without a port; the signing key is derived from the exact Host value",
               std_headers(host="api.kernelgate.example"), keypair="bob"))
    # --- legacy Sorna --------------------------------------------------------
    d.append(V("legacy-sorna-auth-sorna-headers", "legacy 'Sorna' auth type with X-Sorna-Date and X-Sorna-Version; line 6 is still labelled x-backendai-version in kernelgate's scheme",
               [["Host", H_LOCAL], ["Content-Type", JSON_CT], ["X-Sorna-Date", "20240920T081530Z"], ["X-Sorna-Version", "v3.20170615"]],
               auth_type="Sorna", keypair="alice"))
    d.append(V("legacy-sorna-auth-date-header", "legacy 'Sorna' auth type, Date header plus X-Sorna-Version",
               [["Host", H_LOCAL], ["Date", "2024-09-20T08:15:30Z"], ["Content-Type", JSON_CT], ["X-Sorna-Version", "v2.20170315"]],
               auth_type="Sorna"))
    d.append(V("legacy-sorna-headers-backendai-auth", "BackendAI auth type but X-Sorna-Date/X-Sorna-Version headers",
               [["Host", H_LOCAL], ["Content-Type", JSON_CT], ["x-sorna-date", "2024-09-20T08:15:30+00:00"], ["x-sorna-version", V4]],
               keypair="bob"))
    # --- date header selection ----------------------------------------------
    d.append(V("date-x-backendai-date-only", "no Date header: X-BackendAI-Date is used",
               std_headers(date_header="X-BackendAI-Date", date="2025-01-15T09:30:00Z")))
    d.append(V("date-header-wins-over-x-backendai-date", "both Date and X-BackendAI-Date present (different values): Date is signed and keys the date",
               [["Host", H_LOCAL], ["X-BackendAI-Date", "2025-01-16T09:30:00Z"], ["Date", "2025-01-15T09:30:00Z"], ["Content-Type", JSON_CT], ["X-BackendAI-Version", V8]]))
    # --- date forms ------------------------------------------------------------
    dates = [
        ("date-iso-extended-z", "2024-05-02T10:11:12Z", "ISO 8601 extended, Z"),
        ("date-iso-python-isoformat-micro", "2024-05-02T10:11:12.123456+00:00", "Python datetime.isoformat() with microseconds and +00:00 (what the official SDK sends)"),
        ("date-iso-basic-z", "20240502T101112Z", "ISO 8601 basic form"),
        ("date-iso-no-zone", "2024-05-02T10:11:12", "ISO 8601 without a zone: UTC"),
        ("date-iso-basic-no-zone", "20240502T101112", "ISO 8601 basic form without a zone: UTC"),
        ("date-iso-fraction-ms-z", "2024-05-02T10:11:12.123Z", "fractional seconds (milliseconds, JavaScript toISOString())"),
        ("date-iso-fraction-basic", "20240502T101112.5Z", "basic form with a one-digit fraction"),
        ("date-iso-offset-colon", "2024-05-02T19:11:12+09:00", "+HH:MM offset, same day"),
        ("date-iso-offset-no-colon", "2024-05-02T19:11:12+0900", "+HHMM offset, same day"),
        ("date-rfc1123-gmt", "Thu, 02 May 2024 10:11:12 GMT", "RFC 1123 GMT"),
        ("date-rfc1123-numeric-offset", "Thu, 02 May 2024 19:11:12 +0900", "RFC 1123 with a numeric offset"),
        ("date-offset-plus-crosses-forward", "2024-03-01T01:30:00+09:00", "+09:00: key date 20240301 although UTC is still 2024-02-29 (leap day)"),
        ("date-offset-minus-crosses-backward", "2024-12-31T20:00:00-08:00", "-08:00: key date 20241231 although UTC is already 2025-01-01"),
        ("date-rfc1123-offset-crosses-forward", "Fri, 01 Mar 2024 01:30:00 +0900", "RFC 1123 +0900: key date 20240301 although UTC is 2024-02-29"),
        ("date-iso-basic-offset-crosses-backward", "20260101T200500-0500", "basic form with -0500: key date 20260101 although UTC is already 2026-01-02"),
        ("date-iso-offset-minus-0800-micro", "2025-07-04T17:00:00.000001-08:00", "-08:00 with microseconds, key date 20250704, UTC already 2025-07-05"),
    ]
    for name, date, desc in dates:
        d.append(V(name, "date form: " + desc, std_headers(date=date, version=V6), keypair="alice" if "offset" in name else "example"))
    # --- body modes / content types ------------------------------------------
    d.append(V("post-json-strict", "JSON POST /session (non-ASCII UTF-8 in the body), strict: line 7 hashes the exact body",
               std_headers(date="2025-03-10T12:00:00Z", ctype="application/json; charset=utf-8"), method="POST", target="/session", body=JSON_BODY))
    d.append(V("post-json-backendai-empty-body-hash", "same JSON POST signed the way the official SDK does for API >= v4.20181215: line 7 is the EMPTY body hash; accepted only in 'backendai' mode",
               std_headers(date="2025-03-10T12:00:00Z", ctype="application/json; charset=utf-8"), method="POST", target="/session", body=JSON_BODY, mode="backendai"))
    d.append(V("post-form-urlencoded", "application/x-www-form-urlencoded POST, strict",
               std_headers(date="2025-03-10T12:00:01Z", ctype="application/x-www-form-urlencoded"), method="POST", target="/auth/test", body=FORM_BODY, keypair="bob"))
    d.append(V("post-multipart-strict", "multipart/form-data with a boundary parameter (content-type line drops it) and a binary PNG part, strict",
               std_headers(date="2025-03-10T12:00:02Z", ctype="multipart/form-data; boundary=" + BOUNDARY), method="POST",
               target="/session/ocr-job-01/infer", body=MULTIPART_BODY, keypair="carol"))
    d.append(V("post-multipart-backendai", "same multipart request signed with the empty-body hash ('backendai' mode)",
               std_headers(date="2025-03-10T12:00:02Z", ctype="multipart/form-data; boundary=" + BOUNDARY), method="POST",
               target="/session/ocr-job-01/infer", body=MULTIPART_BODY, keypair="carol", mode="backendai"))
    d.append(V("post-octet-stream-all-bytes", "application/octet-stream raw body with every byte value 0x00..0xff",
               std_headers(date="2025-08-01T00:00:00Z", ctype="application/octet-stream"), method="POST",
               target="/session/ocr-job-01/infer", body=ALL_BYTES, sign_method="HMAC-SHA512", keypair="alice"))
    d.append(V("post-image-png-raw", "image/png raw body (1x1 PNG), strict",
               std_headers(date="2025-08-01T00:00:01Z", ctype="image/png"), method="POST",
               target="/session/ocr-job-01/infer", body=PNG_1X1))
    d.append(V("post-image-png-backendai", "image/png raw body, 'backendai' mode (empty-body hash), API v4.20181215",
               std_headers(date="2025-08-01T00:00:01Z", ctype="image/png", version=V4), method="POST",
               target="/session/ocr-job-01/infer", body=PNG_1X1, mode="backendai"))
    d.append(V("content-type-empty", "Content-Type header present with an empty value: line 5 is 'content-type:'",
               std_headers(ctype=""), keypair="bob"))
    d.append(V("content-type-uppercase", "Content-Type with upper-case letters and parameters: 'Application/JSON; Charset=UTF-8' signs as 'application/json'",
               std_headers(ctype="Application/JSON; Charset=UTF-8"), method="PATCH", target="/session/abc", body=b'{"name":"renamed"}'))
    d.append(V("content-type-vendor-suffix", "structured-syntax suffix type 'application/problem+json;charset=utf-8' (no space before parameter)",
               std_headers(ctype="application/problem+json;charset=utf-8"), method="POST", target="/auth/test", body=b"{}"))
    d.append(V("post-empty-body", "POST with an empty body: strict hash is the empty hash", std_headers(), method="POST", target="/auth/test"))
    # --- Backend.AI docs example ---------------------------------------------
    d.append(V("backendai-docs-example-as-printed",
               "The 'Success example' of Backend.AI's docs/manager/common-api/auth.rst as printed today (GET /v2, X-BackendAI-Version: v2.20170215, "
               "signature 022ae894...). That signature was computed for the original v1 example and does NOT verify for this request under this "
               "scheme (nor under the docs' own printed string to sign): valid=false.",
               [["Host", "your.sorna.api.endpoint"], ["Date", "20160930T01:23:45Z"], ["Content-Type", "application/json"], ["X-BackendAI-Version", "v2.20170215"]],
               target="/v2", valid=False, override_sig=DOCS_SIGNATURE))
    d.append(V("backendai-docs-example-original-v1",
               "The original (v1, 2016) form of the docs example: GET /v1, X-Sorna-Version: v1.20160915, Date 20160930T01:23:45Z, host "
               "your.sorna.api.endpoint, empty-body hash, key date 20160930. Reproduces 022ae894... exactly. NOTE: line 6 is "
               "'x-sorna-version:v1.20160915' (the real Backend.AI manager labels line 6 x-sorna-version when only X-Sorna-Version is sent); "
               "kernelgate's fixed scheme would produce 'x-backendai-version:v1.20160915' instead, so this string_to_sign is NOT produced by "
               "the 7-line scheme. The docs printed the header as 'Sorna method=HMAC-SHA256'; it is given here with signMethod=.",
               [["Host", "your.sorna.api.endpoint"], ["Date", "20160930T01:23:45Z"], ["Content-Type", "application/json"], ["X-Sorna-Version", "v1.20160915"]],
               target="/v1", auth_type="Sorna"))
    return d


def build_vector(spec):
    ak, sk = KEYPAIRS[spec["keypair"]]
    label = "x-sorna-version" if spec["name"] in SORNA_LABEL_VECTORS else "x-backendai-version"
    r = sign(spec["sign_method"], sk, spec["method"], spec["target"], spec["headers"], spec["body"],
             spec["mode"], label)
    sig = spec["override_sig"] or r["signature"]
    return {
        "name": spec["name"],
        "description": spec["description"],
        "access_key": ak,
        "secret_key": sk,
        "sign_method": spec["sign_method"],
        "request": {
            "method": spec["method"],
            "target": spec["target"],
            "headers": spec["headers"],
            "body_base64": base64.b64encode(spec["body"]).decode("ascii"),
        },
        "body_hash_mode": spec["mode"],
        "date_used": r["date_used"],
        "key_date": r["key_date"],
        "signed_body_hash": r["signed_body_hash"],
        "string_to_sign": r["string_to_sign"],
        "signing_key_hex": r["signing_key_hex"],
        "signature": sig,
        "authorization": authorization(spec["auth_type"], spec["sign_method"], ak, sig),
        "valid": spec["valid"],
    }


def generate():
    return {
        "description": "Signing test vectors for kernelgate's Backend.AI-compatible HMAC request signing "
                       "(see vectors/README.md). Produced by an independent Python reference signer.",
        "generator": "vectors/reference_signer.py",
        "vectors": [build_vector(s) for s in definitions()],
    }


def serialize(doc):
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


# ---------------------------------------------------------------------------
# Self-check
# ---------------------------------------------------------------------------

FIELDS = ["name", "description", "access_key", "secret_key", "sign_method", "request", "body_hash_mode",
          "date_used", "key_date", "signed_body_hash", "string_to_sign", "signing_key_hex", "signature",
          "authorization", "valid"]
_AK_RE = re.compile(r"^AKIA[A-Z0-9]{16}$")
_KEBAB_RE = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")


def check(path=VECTORS_PATH):
    with open(path, "r", encoding="utf-8") as f:
        text = f.read()
    doc = json.loads(text)
    errors = []

    def err(name, msg):
        errors.append("%s: %s" % (name, msg))

    if text != serialize(generate()):
        err("<file>", "file differs from a fresh generation (run without --check to regenerate)")
    names = set()
    for v in doc["vectors"]:
        n = v.get("name", "?")
        if list(v.keys()) != FIELDS:
            err(n, "field list %r" % list(v.keys()))
            continue
        if n in names or not _KEBAB_RE.match(n):
            err(n, "duplicate or non-kebab name")
        names.add(n)
        if not _AK_RE.match(v["access_key"]) or len(v["secret_key"]) != 40:
            err(n, "keypair format")
        req = v["request"]
        body = base64.b64decode(req["body_base64"])
        label = "x-sorna-version" if n in SORNA_LABEL_VECTORS else "x-backendai-version"
        sm = v["sign_method"]
        r = sign(sm, v["secret_key"], req["method"], req["target"], req["headers"], body, v["body_hash_mode"], label)
        for k in ("date_used", "key_date", "signed_body_hash", "string_to_sign", "signing_key_hex"):
            if r[k] != v[k]:
                err(n, "%s: file %r != recomputed %r" % (k, v[k], r[k]))
        # signature / signing key consistency computed from the stored fields alone
        from_fields = signature(sm, bytes.fromhex(v["signing_key_hex"]), v["string_to_sign"])
        auth_type = v["authorization"].split(" ", 1)[0]
        if auth_type not in ("BackendAI", "Sorna"):
            err(n, "auth type %r" % auth_type)
        if v["authorization"] != authorization(auth_type, sm, v["access_key"], v["signature"]):
            err(n, "authorization header")
        ok = verify(sm, v["secret_key"], req["method"], req["target"], req["headers"], body, v["signature"],
                    v["body_hash_mode"], label)
        if v["valid"]:
            if not (from_fields == r["signature"] == v["signature"]):
                err(n, "signature mismatch")
            if not ok:
                err(n, "valid vector rejected by verify()")
            if v["body_hash_mode"] == "backendai" and body and verify(
                    sm, v["secret_key"], req["method"], req["target"], req["headers"], body, v["signature"], "strict", label):
                err(n, "backendai-mode vector with a body must fail strict verification")
        else:
            if ok or from_fields == v["signature"]:
                err(n, "invalid vector unexpectedly verifies")
    # External known answer: the original Backend.AI docs example.
    orig = [v for v in doc["vectors"] if v["name"] == "backendai-docs-example-original-v1"]
    if not orig or orig[0]["signature"] != DOCS_SIGNATURE or not orig[0]["valid"]:
        err("backendai-docs-example-original-v1", "does not reproduce the docs signature")
    # Date parser spot checks.
    for raw, want in (("2024-03-01T01:30:00+09:00", "20240301"), ("2024-12-31T20:00:00-08:00", "20241231"),
                      ("Tue, 15 Nov 1994 08:12:31 GMT", "19941115"), ("20160930T01:23:45Z", "20160930")):
        if key_date(raw) != want:
            err("<key_date>", "%s -> %s, want %s" % (raw, key_date(raw), want))
    if len(doc["vectors"]) < 40:
        err("<file>", "fewer than 40 vectors")
    for e in errors:
        print("MISMATCH " + e, file=sys.stderr)
    print("%d vectors checked, %d problems" % (len(doc["vectors"]), len(errors)))
    return 1 if errors else 0


def main(argv):
    if "--check" in argv[1:]:
        return check()
    with open(VECTORS_PATH, "w", encoding="utf-8", newline="\n") as f:
        f.write(serialize(generate()))
    print("wrote %s" % os.path.relpath(VECTORS_PATH))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
