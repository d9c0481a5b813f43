"""The dashboard's session cookie and its CSRF rule, shared by the pages and the API.

The login page takes an API key and keeps it in ``SESSION_COOKIE`` (HttpOnly, so page scripts
cannot read it; SameSite=Strict, so another site's page cannot make the browser send it). The
API accepts that cookie in place of ``Authorization: Bearer``, but for a state-changing request
(anything but GET, HEAD, OPTIONS) authenticated by the cookie it also wants ``CSRF_HEADER``
carrying ``csrf_token(key)``: an HMAC of the key, which the server renders into each page and
which a page from another origin can neither read nor compute. SameSite alone would not cover
an old browser or a sibling subdomain; the token does.
"""

from __future__ import annotations

import hashlib
import hmac

__all__ = ["CSRF_HEADER", "SAFE_METHODS", "SESSION_COOKIE", "csrf_token", "csrf_valid"]

SESSION_COOKIE = "llmpulse_session"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_CSRF_CONTEXT = b"llmpulse dashboard csrf v1"


def csrf_token(key: str) -> str:
    """The CSRF token of the session holding ``key`` (stable for the key's life)."""
    return hmac.new(key.encode(), _CSRF_CONTEXT, hashlib.sha256).hexdigest()


def csrf_valid(key: str, token: str | None) -> bool:
    """Whether ``token`` is the CSRF token of ``key`` (compared in constant time)."""
    return token is not None and hmac.compare_digest(csrf_token(key), token)
