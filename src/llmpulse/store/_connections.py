"""What ``Store``'s method mixins (``_server_api``, ``_alerts_api``, ``_workflows_api``) call on
``Store``, declared once: ``Store`` implements each, so its database errors become
``StoreError`` / ``StoreUnavailableError`` the same way in every method."""

from __future__ import annotations

from contextlib import AbstractContextManager

from sqlalchemy import Connection
from sqlalchemy.exc import SQLAlchemyError

from llmpulse.errors import StoreError

__all__ = ["StoreConnections"]


class StoreConnections:
    """The connection hooks of ``Store``, for the mixins that share its connections."""

    def _read(self, what: str) -> AbstractContextManager[Connection]:
        """A read connection; database errors raised as ``StoreError`` naming ``what``."""
        raise NotImplementedError

    def _write_tx(self, rows: int = 0) -> AbstractContextManager[Connection]:
        """One write transaction of about ``rows`` rows (database errors raised as they are)."""
        raise NotImplementedError

    def _writing(self, what: str, rows: int = 1) -> AbstractContextManager[Connection]:
        """``_write_tx`` whose database errors become ``StoreError`` naming ``what``."""
        raise NotImplementedError

    def _error(self, what: str, exc: SQLAlchemyError) -> StoreError:
        """The ``StoreError`` (or ``StoreUnavailableError``) that ``exc`` in ``what`` means."""
        raise NotImplementedError
