"""What every simulated endpoint does before it answers, written once for all of them.

A request is stamped with the engine's generation (so one still in flight across ``reset()`` is
not logged), its key is checked, its JSON body is parsed by the endpoint's own parser and its
model is looked up (``Endpoint._admit``); once the engine has planned it, a planned fault is
served, or a ``slow`` one waited out (``Endpoint._refused``). Every refusal is logged. What
differs between the OpenAI-compatible endpoints and Anthropic's Messages (the key header, the
request log's fields and the shape of each error body) is what a subclass says.
"""

from __future__ import annotations

import asyncio
import contextlib
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from starlette.requests import Request
from starlette.responses import Response

from llmpulse.simulator._config import ModelSpec
from llmpulse.simulator._engine import Engine, Plan, ScriptedFault

__all__ = ["Endpoint", "Parsed", "Stopper"]


class Stopper:
    """Wakes every waiting handler when the simulator stops, so shutdown never waits on latency."""

    def __init__(self) -> None:
        self.stopped = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._event: asyncio.Event | None = None

    async def sleep(self, seconds: float) -> bool:
        """Sleep in the server loop; False when the simulator stopped meanwhile."""
        if self.stopped:
            return False
        if seconds <= 0:
            return True
        if self._event is None:
            self._loop, self._event = asyncio.get_running_loop(), asyncio.Event()
        try:
            await asyncio.wait_for(self._event.wait(), seconds)
        except asyncio.TimeoutError:
            return not self.stopped
        return False

    def stop(self) -> None:
        """Called from any thread: wake all sleepers."""
        self.stopped = True
        if self._loop is not None and self._event is not None:
            with contextlib.suppress(RuntimeError):  # the loop may be closed already
                self._loop.call_soon_threadsafe(self._event.set)


class Parsed(Protocol):
    """What every endpoint's parsed request tells the engine: the model and the prompt size."""

    @property
    def model(self) -> str: ...

    @property
    def prompt_tokens(self) -> int: ...


_Req = TypeVar("_Req", bound=Parsed)


class Endpoint(ABC):
    """The admission and fault gate of one API's handlers; a subclass gives its key rule, its
    request log and its error bodies."""

    def __init__(self, engine: Engine, stopper: Stopper) -> None:
        self.engine = engine
        self.stopper = stopper

    @abstractmethod
    def _authorized(self, request: Request) -> bool:
        """Whether the request carries the configured key, as this API sends it."""

    @abstractmethod
    def _log(
        self, request: Request, req: Any, response: Response, fault: str | None,
        completion_tokens: int = 0,
    ) -> Response:  # fmt: skip
        """Record the request (``req`` is this API's parsed request, or None); return ``response``."""

    @abstractmethod
    def _auth_error(self) -> Response:
        """The 401 this API answers for a missing or wrong key."""

    @abstractmethod
    def _model_not_found(self, model: str) -> Response:
        """The 404 this API answers for a model the simulator does not serve."""

    @abstractmethod
    def _fault_response(
        self, fault: ScriptedFault, model: str, headers: dict[str, str]
    ) -> Response:
        """This API's answer for a served fault (never called for ``slow``)."""

    @abstractmethod
    def _shutting_down(self) -> Response:
        """What this API answers when the simulator stops before the request is answered."""

    async def _admit(
        self, request: Request, parse: Callable[[Any], _Req | Response]
    ) -> tuple[Any, _Req, ModelSpec] | Response:
        """The key, the body (``parse`` validates it) and the model; the logged error that ends
        the request, or the JSON body (chat reads its tools), the parsed request and the model's
        spec."""
        request.state.generation = self.engine.generation
        if not self._authorized(request):
            return self._log(request, None, self._auth_error(), "auth")
        try:
            body = await request.json()
        except ValueError:  # json.JSONDecodeError and UnicodeDecodeError are both ValueErrors
            body = None
        req = parse(body)
        if isinstance(req, Response):
            return self._log(request, None, req, None)
        spec = self.engine.spec(req.model)
        if spec is None:
            return self._log(request, req, self._model_not_found(req.model), None)
        return body, req, spec

    async def _refused(self, request: Request, req: Parsed, plan: Plan) -> Response | None:
        """The logged answer of a planned fault, after waiting out a ``slow`` fault's delay;
        None when the request is to be answered."""
        fault = plan.fault
        if fault is not None and fault.kind != "slow":
            answer = self._fault_response(fault, req.model, plan.headers)
            return self._log(request, req, answer, fault.kind)
        if fault is not None and not await self.stopper.sleep(fault.delay_s):
            return self._log(request, req, self._shutting_down(), "shutdown")
        return None
