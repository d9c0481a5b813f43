"""The one exception hierarchy of llmpulse.

Callers catch one base class; foreign errors are translated at the boundary with
``raise X(...) from exc`` so the cause survives::

    LlmpulseError
     ├── ConfigError              a setting is missing, malformed or contradictory
     │    └── PriceTableError     a price file or price override is malformed
     ├── StoreError               anything the database layer could not do
     │    ├── StoreUnavailableError   the database cannot be reached or opened
     │    │    └── SchemaNotCurrentError   it has no llmpulse tables, or an older schema
     │    ├── MigrationError          the schema could not be brought up to date
     │    └── RecordRejectedError     an all-or-nothing batch held a record the store refuses
     ├── ApiError                 a request to an llmpulse server failed (with how to fix it)
     ├── DetectionInputError      a series given to detection is unusable (with the reason)
     ├── SimulatorError           the LLM simulator was misconfigured or failed to start
     └── RecoveryError            recovery gave up (carries the last underlying error)
          └── CircuitOpenError    the circuit breaker for a model refused the call

The SDK never lets any of these escape into user code once ``init`` returned; they surface
from library calls (the store, detection, the CLI) where the caller asked for the work.
"""

from __future__ import annotations

__all__ = [
    "ApiError",
    "CircuitOpenError",
    "ConfigError",
    "DetectionInputError",
    "LlmpulseError",
    "MigrationError",
    "PriceTableError",
    "RecordRejectedError",
    "RecoveryError",
    "SchemaNotCurrentError",
    "SimulatorError",
    "StoreError",
    "StoreUnavailableError",
]


class LlmpulseError(Exception):
    """Base class of every error llmpulse raises on purpose."""


class ConfigError(LlmpulseError):
    """A setting is missing, malformed or contradictory; the message names it and the fix."""


class PriceTableError(ConfigError):
    """A price file or a price override is malformed; the message names the entry."""


class StoreError(LlmpulseError):
    """The store could not do what was asked."""


class StoreUnavailableError(StoreError):
    """The database cannot be reached or opened."""


class SchemaNotCurrentError(StoreUnavailableError):
    """The database has no llmpulse tables, or its schema is older than this llmpulse's:
    ``llmpulse db upgrade`` fixes both.

    ``revision`` is the database's schema revision (``None``: no llmpulse tables at all),
    ``head`` the one this llmpulse needs. ``problem`` says what is wrong and how to fix it
    without naming the database (the server answers it to clients, who must not see the URL).
    """

    def __init__(self, where: str, *, revision: str | None, head: str, cause: str = "") -> None:
        self.revision = revision
        self.head = head
        if revision is None:
            diagnosis, fix = "has no llmpulse tables", "create them"
        else:
            diagnosis = f"has schema revision {revision}, behind the {head} this llmpulse needs"
            fix = "bring it up to date"
        #: What is wrong and the command that fixes it, without the database's name.
        self.problem = f"{diagnosis}: run `llmpulse db upgrade` to {fix}"
        because = f" ({cause})" if cause else ""
        super().__init__(f"{where} {diagnosis}{because}: run `llmpulse db upgrade` to {fix}")


class MigrationError(StoreError):
    """The database schema could not be brought up to date."""


class RecordRejectedError(StoreError, ValueError):
    """A batch written all-or-nothing held a record the store cannot keep; nothing was written.

    ``where`` names the record (``spans[3]``), ``reason`` says why (``invalid cost_usd: ...``).
    """

    def __init__(self, where: str, reason: str) -> None:
        super().__init__(f"{where}: {reason}")
        self.where = where
        self.reason = reason


class ApiError(LlmpulseError):
    """A request to an llmpulse server failed: unreachable, refused (401/403), not found, or an
    error answer. The message says how to fix it; ``status`` is the HTTP status, if any."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class DetectionInputError(LlmpulseError, ValueError):
    """A series passed to detection cannot be analysed; the message says why."""


class SimulatorError(LlmpulseError):
    """The LLM simulator was misconfigured or could not start."""


class RecoveryError(LlmpulseError):
    """Recovery gave up; ``last_error`` is the final underlying exception, if any."""

    def __init__(self, message: str, *, last_error: BaseException | None = None) -> None:
        super().__init__(message)
        self.last_error = last_error


class CircuitOpenError(RecoveryError):
    """The circuit breaker for a model or provider is open and refused the call."""
