"""The dashboard's routes: page shells, static files, login and logout.

Each page is a Jinja2 shell (autoescaped) with a script of ours that fetches the REST API and
writes every value with ``textContent``; no page holds data of its own, so the API stays the one
contract. When the server requires keys, every page and every asset needs the session cookie
(pages redirect to the login page, assets answer 401); the login page itself loads nothing.

Every response carries a Content-Security-Policy that allows scripts from this origin only (no
inline script, no eval) and inline styles (plotly.js positions its SVG with style attributes).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Protocol
from urllib.parse import parse_qs, quote

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from jinja2 import Environment, PackageLoader, select_autoescape

from llmpulse.dashboard.assets import asset, asset_url, asset_version, preload
from llmpulse.dashboard.session import SESSION_COOKIE, csrf_token, csrf_valid

__all__ = ["CSP", "PAGES", "DashboardAuth", "create_dashboard"]

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; font-src 'self' data:; connect-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}
# The login form's own CSRF cookie (a login CSRF would sign the victim in as the attacker).
_LOGIN_COOKIE = "llmpulse_login"
_MAX_LOGIN_BODY = 8192
# The login page shows one of these (a code in the URL, never text from it).
_LOGIN_ERRORS = {
    "expired": "The form expired: sign in again.",
    "denied": "That key is unknown, revoked or cannot read.",
}


class DashboardAuth(Protocol):
    """What the dashboard asks the server: are keys required now, and may this key read?"""

    def required(self, request: Request) -> bool:
        """Whether requests need a key right now."""

    def allows_read(self, request: Request, key: str) -> bool:
        """Whether ``key`` is a valid, unrevoked key with the read scope."""


# path -> (template, title, needs charts); a page's script is static/<template>.js.
PAGES: dict[str, tuple[str, str, bool]] = {
    "/": ("overview", "Overview", True),
    "/models": ("models", "Models", False),
    "/traces": ("traces", "Traces", False),
    "/runs": ("runs", "Runs", True),
    "/workflows": ("workflows", "Workflows", True),
    "/alerts": ("alerts", "Alerts", False),
    "/system": ("system", "System", True),
}
_NAV = [(path, title) for path, (_, title, _) in PAGES.items()]


def _env() -> Environment:
    env = Environment(
        loader=PackageLoader("llmpulse.dashboard", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
    )
    env.globals["asset_url"] = asset_url
    return env


def create_dashboard(auth: DashboardAuth) -> APIRouter:
    """The dashboard's router; the server includes it (pages at ``/``, files at ``/static``)."""
    views = _Views(auth)
    preload()
    router = APIRouter(include_in_schema=False)
    for path, (template, title, charts) in PAGES.items():
        router.add_api_route(path, views.page(template, title, charts), methods=["GET"])
    router.add_api_route("/models/{model:path}", views.model_page, methods=["GET"])
    router.add_api_route("/traces/{trace_id}", views.trace_page, methods=["GET"])
    router.add_api_route("/static/{name}", views.static, methods=["GET"])
    router.add_api_route("/login", views.login_form, methods=["GET"])
    router.add_api_route("/login", views.login, methods=["POST"])
    router.add_api_route("/logout", views.logout, methods=["POST"])
    return router


class _Views:
    """The dashboard's request handlers, sharing the template environment and the auth."""

    def __init__(self, auth: DashboardAuth) -> None:
        self.auth = auth
        self.env = _env()

    def session_key(self, request: Request) -> str | None:
        """The request's valid session key; "" while no key is required; None if refused."""
        if not self.auth.required(request):
            return ""
        key = request.cookies.get(SESSION_COOKIE)
        return key if key and self.auth.allows_read(request, key) else None

    def render(self, request: Request, key: str, template: str, **context: object) -> Response:
        html = self.env.get_template(f"{template}.html").render(
            nav=_NAV, path=request.url.path, csrf=csrf_token(key) if key else "",
            logged_in=bool(key), script=template, **context,
        )  # fmt: skip
        return HTMLResponse(html, headers={**_HEADERS, "Cache-Control": "no-store"})

    def shell(
        self, request: Request, template: str, title: str, charts: bool, arg: str
    ) -> Response:
        key = self.session_key(request)
        if key is None:
            return _to_login(request)
        return self.render(request, key, template, title=title, charts=charts, arg=arg)

    def page(self, template: str, title: str, charts: bool) -> Callable[[Request], Response]:
        """The handler of a page without a path argument."""

        def handler(request: Request) -> Response:
            return self.shell(request, template, title, charts, "")

        return handler

    def model_page(self, request: Request, model: str) -> Response:
        """One model's page."""
        return self.shell(request, "model", f"Model {model}", True, model)

    def trace_page(self, request: Request, trace_id: str) -> Response:
        """One trace's page."""
        return self.shell(request, "trace", "Trace", False, trace_id)

    def static(self, request: Request, name: str, v: str = "") -> Response:
        """Our scripts and stylesheet, and plotly.min.js; 401 without a session. Gzipped for
        a client that takes it; kept for a year when asked by its versioned URL (``?v=``)."""
        if self.session_key(request) is None:
            return Response("a key is required: sign in at /login", 401, headers=_HEADERS)
        if asset_version(name) is None:
            return Response("no such file", 404, headers=_HEADERS)
        found = asset(name)
        assert found is not None
        packed = found.gzipped is not None and _takes_gzip(request)
        etag = found.etag[:-1] + '-gz"' if packed else found.etag
        headers = {**_HEADERS, "ETag": etag, "Vary": "Accept-Encoding",
                   "Cache-Control": _cache_control(v == asset_version(name))}  # fmt: skip
        if request.headers.get("if-none-match") == etag:
            return Response(status_code=304, headers=headers)
        if packed:
            assert found.gzipped is not None
            headers["Content-Encoding"] = "gzip"
            return Response(found.gzipped, media_type=found.media_type, headers=headers)
        return Response(found.body, media_type=found.media_type, headers=headers)

    def login_form(self, request: Request, next: str = "/", error: str = "") -> Response:  # noqa: A002
        """The login page (no script, no asset) with a fresh login CSRF token."""
        token = secrets.token_urlsafe(24)
        html = self.env.get_template("login.html").render(
            token=token, next=_safe_next(next), error=_LOGIN_ERRORS.get(error, "")
        )
        response = HTMLResponse(html, headers={**_HEADERS, "Cache-Control": "no-store"})
        _set_cookie(request, response, _LOGIN_COOKIE, token, path="/login")
        return response

    async def login(self, request: Request) -> Response:
        """Check the key; on success keep it in the session cookie and go on to ``next``."""
        form = await _form(request)
        target = _safe_next(form.get("next", "/"))
        token = request.cookies.get(_LOGIN_COOKIE, "")
        if not token or not secrets.compare_digest(token, form.get("csrf", "")):
            return _login_again(target, "expired")
        key = form.get("key", "").strip()
        if not key or not self.auth.allows_read(request, key):
            return _login_again(target, "denied")
        response = RedirectResponse(target, 303, headers=_HEADERS)
        _set_cookie(request, response, SESSION_COOKIE, key, path="/")
        response.delete_cookie(_LOGIN_COOKIE, path="/login")
        return response

    async def logout(self, request: Request) -> Response:
        """Drop the session cookie (the form carries the session's CSRF token)."""
        form = await _form(request)
        key = request.cookies.get(SESSION_COOKIE, "")
        if key and not csrf_valid(key, form.get("csrf")):
            return Response("the form's CSRF token is missing or wrong", 403, headers=_HEADERS)
        response = RedirectResponse("/login", 303, headers=_HEADERS)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response


def _to_login(request: Request) -> Response:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/login?next={quote(target, safe='')}", 303, headers=_HEADERS)


def _cache_control(versioned: bool) -> str:
    # private: behind the key. A versioned URL names one content for good (a new version is a
    # new URL); a bare one is checked again each time (a 304 while it is the same).
    return "private, max-age=31536000, immutable" if versioned else "private, no-cache"


def _takes_gzip(request: Request) -> bool:
    accepted = request.headers.get("accept-encoding", "")
    for item in accepted.split(","):
        coding, _, params = item.strip().partition(";")
        if coding.strip().lower() == "gzip":
            return params.replace(" ", "").lower() not in ("q=0", "q=0.0", "q=0.00", "q=0.000")
    return False


def _safe_next(target: str) -> str:
    """Only a path on this server (no scheme, no //host) may follow the login."""
    ok = target.startswith("/") and not target.startswith("//") and "\\" not in target
    return target if ok else "/"


def _login_again(target: str, error: str) -> Response:
    query = f"next={quote(target, safe='')}&error={error}"
    return RedirectResponse(f"/login?{query}", 303, headers=_HEADERS)


async def _form(request: Request) -> dict[str, str]:
    body = await request.body()
    if len(body) > _MAX_LOGIN_BODY:
        return {}
    parsed = parse_qs(body.decode("utf-8", "replace"), max_num_fields=10)
    return {name: values[0] for name, values in parsed.items()}


def _set_cookie(request: Request, response: Response, name: str, value: str, path: str) -> None:
    response.set_cookie(
        name, value, path=path, httponly=True, samesite="strict",
        secure=request.url.scheme == "https",
    )  # fmt: skip
