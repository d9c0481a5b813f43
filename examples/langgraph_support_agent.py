"""A LangGraph support agent recorded by llmpulse, then its flow and `llmpulse check` findings.

The agent classifies each ticket with a model call, routes it at a conditional edge (refund,
question, or escalate), answers with another model call, and loops back to drafting when the
answer is too short. llmpulse records every node, model call and route into SQLite through
``llmpulse.instrument_langchain()``.

Two days of traffic are simulated with a clock moved by hand: on the first day few tickets ask
for refunds, on the second many do (a product broke). The script ends by printing the graph's
flow as Mermaid and the findings of the checks, where the refund route's jump shows up as a
``branch_shift``.

Run: python examples/langgraph_support_agent.py [--tickets 60] [--database-url URL]
Without OPENAI_BASE_URL it starts the llmpulse LLM simulator in-process (no key, no network).
"""

from __future__ import annotations

import argparse
import os
import random
import tempfile
import time
from typing import Any, TypedDict

from langchain_openai import ChatOpenAI
from langgraph.graph import END, START, StateGraph

import llmpulse
from llmpulse.checks import CheckConfig, LiveConfig, findings_table, run_checks
from llmpulse.flow import flow_view, to_mermaid
from llmpulse.store import Store

DAY = 86_400.0
T0 = 1_790_000_000.0


class ShiftedClock:
    """The real clock moved to a chosen day: spans keep their real latencies."""

    def __init__(self) -> None:
        self.offset = 0.0

    def time(self) -> float:
        return time.time() + self.offset

    def move_to(self, when: float) -> None:
        self.offset = when - time.time()


class Ticket(TypedDict, total=False):
    text: str
    intent: str
    answer: str
    drafts: int


def build_agent(chat: ChatOpenAI) -> Any:
    """classify -> (refund | answer | escalate); answer loops until its draft is long enough."""

    def classify(t: Ticket) -> Ticket:
        chat.invoke(f"Classify this ticket: {t['text']}")
        text = t["text"].lower()
        intent = "refund" if "refund" in text else "escalate" if "angry" in text else "question"
        return {"intent": intent}

    def answer(t: Ticket) -> Ticket:
        reply = chat.invoke(f"Answer briefly: {t['text']}").content
        return {"answer": str(reply), "drafts": t.get("drafts", 0) + 1}

    def refund(t: Ticket) -> Ticket:
        return {"answer": "Refund started."}

    def escalate(t: Ticket) -> Ticket:
        return {"answer": "A human will call you."}

    def route(t: Ticket) -> str:
        return {"refund": "refund", "escalate": "escalate"}.get(t["intent"], "answer")

    def long_enough(t: Ticket) -> str:
        return END if len(t["answer"]) > 40 or t["drafts"] >= 2 else "answer"

    graph = StateGraph(Ticket)
    for name, fn in (("classify", classify), ("answer", answer), ("refund", refund),
                     ("escalate", escalate)):  # fmt: skip
        graph.add_node(name, fn)
    graph.add_edge(START, "classify")
    graph.add_conditional_edges("classify", route, ["refund", "answer", "escalate"])
    graph.add_conditional_edges("answer", long_enough, ["answer", END])
    graph.add_edge("refund", END)
    graph.add_edge("escalate", END)
    return graph.compile(name="support")


def tickets(n: int, refund_share: float, rng: random.Random) -> list[str]:
    out = []
    for i in range(n):
        roll = rng.random()
        if roll < refund_share:
            out.append(f"I want a refund for order {i}")
        elif roll < refund_share + 0.1:
            out.append(f"I am angry about order {i}")
        else:
            out.append(f"How do I change the address of order {i}?")
    return out


def run(base_url: str, url: str, n: int) -> None:
    clock = ShiftedClock()
    llmpulse.init(url, clock=clock, service_name="support-agent")
    llmpulse.instrument_langchain()
    chat = ChatOpenAI(model="gpt-4o-mini", base_url=base_url, api_key="sim", max_retries=0)
    agent = build_agent(chat)
    rng = random.Random(7)
    for day, refund_share in ((0, 0.1), (1, 0.6)):
        for i, text in enumerate(tickets(n, refund_share, rng)):
            clock.move_to(T0 + day * DAY + i * 60.0)  # a ticket a minute
            agent.invoke({"text": text})
    llmpulse.shutdown()

    with Store.open(url) as store:
        view = flow_view(store, "support", T0, T0 + 2 * DAY)
        print("Flow of 'support' over both days (Mermaid):\n")
        print(to_mermaid(view))
        config = CheckConfig(live=LiveConfig(method="rule", min_calls=10))
        report = run_checks(
            store, start=T0 + DAY, end=T0 + 2 * DAY, baseline_start=T0, config=config
        )
    print("Findings of `llmpulse check` for the second day against the first:\n")
    from rich.console import Console

    Console(width=160).print(findings_table(report.findings, compact=True))
    shifts = [f for f in report.findings if f.check == "branch_shift"]
    assert any(f.subject.get("branch") == "refund" for f in shifts), "the refund shift was missed"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=60, help="tickets per day")
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    url = args.database_url or f"sqlite:///{tempfile.mkdtemp()}/support.db"
    base_url = os.environ.get("OPENAI_BASE_URL")
    if base_url:
        run(base_url, url, args.tickets)
        return
    from llmpulse.simulator import LLMSimulator, SimulatorConfig

    with LLMSimulator(SimulatorConfig(seed=3)) as sim:
        run(sim.base_url, url, args.tickets)


if __name__ == "__main__":
    main()
