"""Run the demo: start the simulator, answer tickets through the instrumented pipeline, inject
the incident midway, and flush everything to the store.

The work is plain library code (the CLI command only renders it), so tests run the same demo.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from llmpulse.demo.clock import VirtualClock
from llmpulse.demo.incident import MODEL_BASELINES, Incident
from llmpulse.demo.pipeline import Outcome, SupportAssistant
from llmpulse.demo.tickets import make_tickets

__all__ = ["DemoResult", "DemoSettings", "run_demo"]


# The service name on every span the demo records (how a rerun recognises its own data).
DEMO_SERVICE = "support-assistant"


@dataclass(frozen=True, slots=True)
class DemoSettings:
    """How big the demo is and where it writes."""

    requests: int = 400
    database_url: str = "sqlite:///./llmpulse.db"
    seed: int = 7
    workers: int = 4
    spacing_s: float = 20.0  # virtual seconds between two tickets
    incident: Incident = field(default_factory=Incident)
    recovery: bool = True


@dataclass(slots=True)
class DemoResult:
    """What the run did, with the virtual times the report and the checks need."""

    settings: DemoSettings
    start: float
    end: float
    incident_start: float
    incident_end: float
    outcomes: list[Outcome]
    wall_seconds: float
    sdk_stats: Any  # llmpulse's SdkStats after the final flush


def run_demo(settings: DemoSettings, progress: Callable[[int], None] | None = None) -> DemoResult:
    """Answer ``settings.requests`` tickets; ``progress(n)`` is called after each one."""
    import openai

    import llmpulse
    from llmpulse.simulator import LLMSimulator, SimulatorConfig

    n = settings.requests
    wall0 = time.time()
    clock = VirtualClock(start=wall0 - n * settings.spacing_s - 120.0, spacing_s=settings.spacing_s)
    config = SimulatorConfig(seed=settings.seed, model_faults=dict(MODEL_BASELINES))
    first, last = settings.incident.window(n)
    with LLMSimulator(config) as sim:
        llmpulse.init(settings.database_url, clock=_ClockAdapter(clock), service_name=DEMO_SERVICE)
        client = openai.OpenAI(base_url=sim.base_url, api_key="sim", max_retries=0)
        assistant = SupportAssistant(client, answer_client=_answer_client(client, settings))
        tickets = make_tickets(n, settings.seed)
        outcomes: list[Outcome | None] = [None] * n
        incident_faults = settings.incident.faults()
        normal_faults = MODEL_BASELINES[settings.incident.model]
        switches: dict[int, Callable[[], object]] = {
            first: lambda: sim.set_faults(incident_faults, model=settings.incident.model),
            last: lambda: sim.set_faults(normal_faults, model=settings.incident.model),
        }
        cursor = _Cursor(n, switches)

        def work() -> None:
            while (i := cursor.take()) is not None:
                try:
                    with clock.request(i):
                        outcomes[i] = assistant.handle(tickets[i])
                finally:
                    cursor.done()
                if progress is not None:
                    progress(1)

        threads = [
            threading.Thread(target=work, name=f"demo-worker-{k}") for k in range(settings.workers)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        llmpulse.flush(timeout=60)
        stats = llmpulse.get_client().stats()
        llmpulse.shutdown()
    return DemoResult(
        settings=settings,
        start=clock.at(0),
        end=clock.at(n),
        incident_start=clock.at(first),
        incident_end=clock.at(last),
        outcomes=[o for o in outcomes if o is not None],
        wall_seconds=time.time() - wall0,
        sdk_stats=stats,
    )


class _ClockAdapter:
    """The SDK takes a clock object with ``time()``."""

    def __init__(self, clock: VirtualClock) -> None:
        self.time = clock


class _Cursor:
    """Hands out request indices in order; at a switch index it first waits for every earlier
    request to finish and runs the switch, so the incident starts and ends between requests."""

    def __init__(self, n: int, switches: dict[int, Callable[[], object]]) -> None:
        self._next = 0
        self._done = 0
        self._n = n
        self._switches = dict(switches)
        self._cond = threading.Condition()

    def take(self) -> int | None:
        with self._cond:
            # Several workers may wait here; whichever sees every earlier request done runs it.
            while self._next in self._switches:
                if self._done == self._next:
                    self._switches.pop(self._next)()
                else:
                    self._cond.wait()
            if self._next >= self._n:
                return None
            self._next += 1
            return self._next - 1

    def done(self) -> None:
        with self._cond:
            self._done += 1
            self._cond.notify_all()


def _answer_client(client: object, settings: DemoSettings) -> object:
    """The answer step's client: with recovery (retries, fallback to gpt-4o-mini) unless disabled."""
    if not settings.recovery:
        return client
    from llmpulse.demo.recovery_setup import recovering_client

    return recovering_client(client)
