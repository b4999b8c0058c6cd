"""CSRF defence for cookie-authenticated requests: the per-session token must come back in the
``X-CSRF-Token`` header of every mutating request.

Owns that rule only. Must never apply to bearer-token requests (a browser cannot be tricked into
sending an Authorization header) and never compare tokens in non-constant time.
"""

from __future__ import annotations

import hmac

HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def needs_check(method: str) -> bool:
    return method.upper() not in SAFE_METHODS


def token_ok(expected: str, presented: str | None) -> bool:
    if not presented or not expected:
        return False
    return hmac.compare_digest(expected.encode("utf-8"), presented.encode("utf-8"))
