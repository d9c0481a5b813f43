"""LLMSimulator: the app served by uvicorn on a real socket, in a background thread."""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any

from llmpulse.errors import SimulatorError
from llmpulse.simulator._config import Faults, SimulatorConfig
from llmpulse.simulator._engine import Engine, RequestRecord

__all__ = ["LLMSimulator"]

log = logging.getLogger(__name__)

_POLL_S = 0.005


class LLMSimulator:
    """A local OpenAI-compatible server that can be told to be slow, fail or rate-limit.

    Example::

        with LLMSimulator(SimulatorConfig(seed=7)) as sim:
            client = openai.OpenAI(base_url=sim.base_url, api_key="sim")
            sim.fail_next(2, status=429, retry_after=1.0)
            ...
    """

    def __init__(
        self, config: SimulatorConfig | None = None, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.config = config or SimulatorConfig()
        if not isinstance(self.config, SimulatorConfig):
            raise SimulatorError(
                f"LLMSimulator(config=...) wants a SimulatorConfig, got {type(config).__name__}"
            )
        self._engine = Engine(self.config, clock)
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._port: int | None = None
        self._stopper: Any = None

    # --- lifecycle ---------------------------------------------------------------------------
    def start(self, timeout: float = 10.0) -> LLMSimulator:
        """Bind the socket, serve in a daemon thread, and return once it accepts requests."""
        if self._thread is not None:
            raise SimulatorError("LLMSimulator.start(): already running; call stop() first")
        import uvicorn

        from llmpulse.simulator._app import build_app
        from llmpulse.simulator._endpoint import Stopper

        sock = self._bind()
        self._stopper = Stopper()
        self._port = sock.getsockname()[1]
        config = uvicorn.Config(
            build_app(self._engine, self._stopper),
            log_config=None,
            log_level="warning",
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=2,
            timeout_keep_alive=5,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._serve, args=(sock,), name=f"llm-simulator-{self._port}", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise SimulatorError(
                    f"the LLM simulator did not start on {self.config.host}:{self._port}"
                )
            time.sleep(_POLL_S)
        return self

    def _bind(self) -> socket.socket:
        family = socket.AF_INET6 if ":" in self.config.host else socket.AF_INET
        # proto=IPPROTO_TCP matters: asyncio only sets TCP_NODELAY on accepted sockets whose proto
        # says TCP, and without it every keep-alive answer waits ~40 ms for a delayed ACK.
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.config.host, self.config.port))
        except OSError as exc:
            sock.close()
            raise SimulatorError(
                f"cannot bind the LLM simulator to {self.config.host}:{self.config.port} ({exc}); "
                "pick another port, or port 0 for any free one"
            ) from exc
        sock.set_inheritable(True)
        return sock

    def _serve(self, sock: socket.socket) -> None:
        try:
            self._server.run(sockets=[sock])
        except Exception:  # the thread must not die with a traceback nobody reads
            log.exception("LLM simulator crashed")
        finally:
            sock.close()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving and wait for the thread; idempotent.

        Requests still waiting on latency are answered 503 at once and streams are cut, so
        stopping never waits for a slow answer.
        """
        thread, server = self._thread, self._server
        if thread is None or server is None:
            return
        self._stopper.stop()
        server.should_exit = True
        thread.join(timeout)
        if thread.is_alive():
            log.warning("LLM simulator thread did not stop within %.1fs", timeout)
        self._thread = None
        self._server = None

    @property
    def running(self) -> bool:
        """True while the server thread serves."""
        return self._thread is not None and self._thread.is_alive()

    def __enter__(self) -> LLMSimulator:
        return self if self.running else self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # --- addresses ---------------------------------------------------------------------------
    @property
    def port(self) -> int:
        """The bound TCP port (the real one when the config asked for port 0)."""
        if self._port is None:
            raise SimulatorError("the LLM simulator has no port yet; call start() first")
        return self._port

    @property
    def url(self) -> str:
        """Root URL, e.g. ``http://127.0.0.1:PORT``."""
        host = f"[{self.config.host}]" if ":" in self.config.host else self.config.host
        return f"http://{host}:{self.port}"

    @property
    def base_url(self) -> str:
        """The ``base_url`` for ``openai.OpenAI``, e.g. ``http://127.0.0.1:PORT/v1``."""
        return f"{self.url}/v1"

    # --- faults at runtime -----------------------------------------------------------------
    def set_faults(
        self, faults: Faults | None = None, *, model: str | None = None, **changes: Any
    ) -> Faults:
        """Replace the faults (globally, or for one model), or change some fields of the current ones.

        ``sim.set_faults(Faults(error_rate=0.3))`` replaces; ``sim.set_faults(latency_scale=10)``
        changes one field of what is in force; ``model="gpt-4o"`` scopes either to one model.
        Returns the faults now in force for that scope.
        """
        base = faults if faults is not None else self._engine.faults_for(model)
        if not isinstance(base, Faults):
            raise SimulatorError(f"set_faults() wants a Faults, got {type(base).__name__}")
        new = Faults.from_dict(changes, base=base) if changes else base
        self._engine.set_faults(new, model=model)
        return new

    def clear_faults(self, model: str | None = None) -> None:
        """No faults any more: everywhere (model=None) or for one model (it follows the global ones)."""
        self._engine.clear_faults(model)

    def faults(self, model: str | None = None) -> Faults:
        """The faults in force for ``model`` (or the global ones)."""
        return self._engine.faults_for(model)

    def fail_next(
        self,
        n: int = 1,
        status: int | None = 429,
        *,
        retry_after: float = 1.0,
        model: str | None = None,
        kind: str | None = None,
        delay_s: float = 0.0,
    ) -> None:
        """Fail exactly the next ``n`` chat requests (to ``model``, or to any model).

        ``status`` picks the failure: 429 (rate limit with Retry-After), 5xx (server error), 400
        (context length), 401 (auth). ``kind`` overrides it: ``"html"`` (a 502 HTML page),
        ``"overloaded"`` (503), ``"slow"`` (answers normally after ``delay_s`` seconds).
        A model's own queue is served before the global one.
        """
        self._engine.fail_next(
            n,
            status=None if kind else status,
            kind=kind,
            retry_after_s=retry_after,
            delay_s=delay_s,
            model=model,
        )

    @property
    def pending_failures(self) -> int:
        """Failures queued by ``fail_next`` not served yet."""
        return self._engine.pending_failures()

    # --- observation -------------------------------------------------------------------------
    @property
    def requests(self) -> list[RequestRecord]:
        """Every request answered so far (model, messages, stream, status, fault), oldest first."""
        return self._engine.requests()

    def statuses(self, model: str | None = None) -> list[int]:
        """Status codes answered so far, oldest first (optionally for one model)."""
        return [r.status for r in self.requests if model is None or r.model == model]

    def reset(self, *, faults: bool = True) -> None:
        """Forget requests, queued failures, buckets and random streams; by default also put the
        faults back to those the config started with."""
        self._engine.reset()
        if faults:
            self._engine.restore_faults()

    def __repr__(self) -> str:
        where = self.base_url if self._port is not None else "not started"
        return f"LLMSimulator({where}, models={list(self.config.models)}, seed={self.config.seed})"
