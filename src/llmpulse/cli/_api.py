"""The CLI's client of an llmpulse server's REST API: JSON in, JSON out, one clear error.

Every failure becomes an ``ApiError`` whose message says what to do, because the person reading
it is at a terminal, not in a debugger: the server is unreachable (start it, or fix
``--server-url``), the key is missing or refused (pass ``--api-key``, create one), the key lacks a
scope (which one), the address is not an llmpulse server (a 404 with no route), or the server
refused the request (its RFC 9457 ``detail`` names what is wrong). A resource that does not exist
(a ``not-found`` problem) is an ``ApiError`` with ``status`` 404, which callers turn into their
own "no trace 'x'" message.

Lists follow ``next_cursor`` until the last page (``pages``), one request per page, so memory
holds one page whatever the listing's length. Needs httpx (the ``client`` extra).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import urlsplit

from llmpulse._tls import http_url, plain_http_answer
from llmpulse.errors import ApiError

__all__ = ["ApiClient", "normalize_server_url"]

TIMEOUT_SECONDS = 30.0  # per request; a page of 1,000 spans comes back in well under a second
_NOT_FOUND = "urn:llmpulse:problem:not-found"
_KEY_HELP = "`llmpulse keys create --name cli --scope {scope}` on the server's database"


def normalize_server_url(url: str) -> str:
    """``url`` without a trailing ``/`` or ``/api/v1``; a ``ValueError`` saying how to write it
    when it is not an http(s) address."""
    text = url.strip().rstrip("/")
    if text.endswith("/api/v1"):
        text = text[: -len("/api/v1")]
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(
            f"--server-url {url!r} is not a server address: write it like "
            "http://127.0.0.1:8000 (the address `llmpulse serve` prints)"
        )
    return text


class ApiClient:
    """Requests to one llmpulse server, authenticated with ``api_key`` when given."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        *,
        timeout: float = TIMEOUT_SECONDS,
        transport: Any = None,
    ) -> None:
        import httpx

        self.url = normalize_server_url(base_url)
        self._has_key = bool(api_key)
        self._timeout = timeout
        headers = {"Accept": "application/json"}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key.strip()}"
        self._http = httpx.Client(
            base_url=self.url, headers=headers, timeout=timeout, transport=transport
        )

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def get(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        """The JSON body of ``GET path``."""
        return self._request("GET", path, params=params)

    def post(self, path: str, body: Mapping[str, Any]) -> Any:
        """The JSON body of ``POST path`` with a JSON ``body``."""
        return self._request("POST", path, json=dict(body))

    def patch(self, path: str, body: Mapping[str, Any]) -> Any:
        """The JSON body of ``PATCH path`` with a JSON ``body``."""
        return self._request("PATCH", path, json=dict(body))

    def pages(self, path: str, params: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
        """Every item of a cursor-paged listing, a page at a time (following ``next_cursor``)."""
        cursor: str | None = None
        while True:
            query = dict(params) | ({"cursor": cursor} if cursor else {})
            page = self.get(path, query)
            if not isinstance(page, dict) or not isinstance(page.get("items"), list):
                raise ApiError(f"{self.url}{path} did not answer with a page of items: is "
                               "--server-url the address of `llmpulse serve`?")  # fmt: skip
            yield from page["items"]
            following = page.get("next_cursor")
            if not following:
                return
            if following == cursor:  # a server bug must not become an endless loop
                raise ApiError(f"{self.url}{path} returned the same page twice")
            cursor = following

    def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        import httpx

        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TimeoutException:
            raise ApiError(
                f"the llmpulse server at {self.url} did not answer within {self._timeout:g} s "
                "(overloaded, or a very long window): try again, or narrow --window"
            ) from None
        except httpx.TransportError as exc:
            if urlsplit(self.url).scheme == "https" and plain_http_answer(exc):
                plain = http_url(self.url)
                raise ApiError(
                    f"cannot reach the llmpulse server at {self.url} ({_reason(exc)}): the "
                    f"server may speak plain http, not https: try {plain} (--server-url or "
                    "$LLMPULSE_SERVER_URL)"
                ) from None
            raise ApiError(
                f"cannot reach the llmpulse server at {self.url} ({_reason(exc)}): is "
                "`llmpulse serve` running there? Check --server-url or $LLMPULSE_SERVER_URL"
            ) from None
        if response.status_code >= 400:
            raise self._error(response, path)
        try:
            return response.json()
        except ValueError:
            kind = response.headers.get("content-type", "no content type")
            raise ApiError(
                f"{self.url} did not answer like an llmpulse server (HTTP "
                f"{response.status_code}, {kind}): is --server-url the address of "
                "`llmpulse serve`?"
            ) from None

    def _error(self, response: Any, path: str) -> ApiError:
        """The ``ApiError`` of an error answer, saying how to fix it."""
        status = response.status_code
        problem = _problem(response)
        detail = str(problem.get("detail") or response.reason_phrase or "").strip()
        if status == 401:
            if not self._has_key:
                return ApiError(
                    f"the server at {self.url} needs an API key: pass --api-key KEY or set "
                    f"LLMPULSE_API_KEY (create one with {_KEY_HELP.format(scope='read')})",
                    status=status,
                )
            return ApiError(
                f"the server at {self.url} refused the API key (unknown, malformed or revoked): "
                "check --api-key / $LLMPULSE_API_KEY, or create a new one with "
                f"{_KEY_HELP.format(scope='read')}",
                status=status,
            )
        if status == 403:
            scope = str(problem.get("required_scope") or "admin")
            return ApiError(
                f"the API key may not do this on {self.url} ({detail}): use a key with the "
                f"{scope!r} scope ({_KEY_HELP.format(scope=scope)})",
                status=status,
            )
        if status == 404 and problem.get("type") != _NOT_FOUND:
            return ApiError(
                f"{self.url} has no {path} (404): is --server-url the address of `llmpulse "
                "serve` (like http://127.0.0.1:8000), and is that server this llmpulse version?",
                status=status,
            )
        if status >= 500:
            retry = response.headers.get("retry-after")
            again = f"; try again in {retry} s" if retry else ""
            return ApiError(
                f"the server at {self.url} failed ({status}): {detail or 'no detail'}{again}",
                status=status,
            )
        if status == 404:
            return ApiError(detail, status=status)
        return ApiError(
            f"the server at {self.url} refused the request ({status}): {detail}", status=status
        )


def _problem(response: Any) -> dict[str, Any]:
    """The problem document of an error answer (``{}`` when it is not one)."""
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if "refused" in text.lower():
        return "connection refused"
    return text
