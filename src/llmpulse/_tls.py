"""Telling "this server speaks plain http" from other TLS failures, for every HTTP client of
llmpulse (the SDK's exporter, the CLI's API client).

An ``https://`` URL pointed at a plain-http server (``llmpulse serve`` speaks plain http unless
a proxy in front terminates TLS) fails in the TLS handshake: the server answers the ClientHello
with a plain-text "400 Bad Request", which OpenSSL reads as a malformed record. Standard
library only: the SDK imports it.
"""

from __future__ import annotations

__all__ = ["http_url", "plain_http_answer"]

# What OpenSSL says when the other end answers a TLS handshake with plain text (a plain-http
# server's "400 Bad Request"): older OpenSSL names the version, 3.2+ the record layer.
_PLAIN_HTTP_SIGNS = ("wrong version number", "record layer failure", "packet length too long")


def plain_http_answer(exc: BaseException) -> bool:
    """Whether a TLS handshake failed because the server answered in plain http."""
    text = str(exc).lower()
    return any(sign in text for sign in _PLAIN_HTTP_SIGNS)


def http_url(url: str) -> str:
    """``url`` with ``https://`` replaced by ``http://`` (the address to try instead)."""
    return "http://" + url[len("https://") :] if url.startswith("https://") else url
