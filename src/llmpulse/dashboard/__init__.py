"""The web dashboard: server-rendered pages whose tables and charts load from the REST API.

``llmpulse serve`` mounts it at ``/`` (``llmpulse.dashboard.routes.create_dashboard``). It sits
below the server: it knows nothing of the server's key store and is handed an authenticator
(``DashboardAuth``) by the server instead. This module holds only what both sides share, the
session cookie and the CSRF rule (``llmpulse.dashboard.session``), so the server can check a
cookie without loading Jinja2.
"""

from __future__ import annotations

from llmpulse.dashboard.session import (
    CSRF_HEADER,
    SESSION_COOKIE,
    csrf_token,
    csrf_valid,
)

__all__ = ["CSRF_HEADER", "SESSION_COOKIE", "csrf_token", "csrf_valid"]
