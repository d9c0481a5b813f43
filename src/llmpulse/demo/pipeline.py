"""The demo's LLM application: a support assistant, instrumented the way a user would do it.

Each ticket goes classify → retrieve → answer, then a branch decides whether a human reviews the
reply before it is sent. The calls go through the real ``openai`` client (recorded by llmpulse's
instrumentation); the steps are ``llmpulse.observe``-d functions; the routing decision is a
branch decision of the ``support`` workflow (``llmpulse.record_branch``: from ``answer`` to
``auto_reply`` or ``human_review``, the step that then runs), so the flow view, the Workflows
page and the branch_shift check all see it. Nothing here knows about the incident the runner
injects.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import llmpulse
from llmpulse.demo.tickets import INTENTS, Ticket

__all__ = ["ROUTE_DECISION", "WORKFLOW", "Outcome", "SupportAssistant"]

WORKFLOW = "support"
# The branch span name of the routing decision (``"<workflow>:<from node>"``).
ROUTE_DECISION = f"{WORKFLOW}:answer"

_CLASSIFY_PROMPT = (
    "You are a support triage model. Answer with exactly one label from: "
    + ", ".join(INTENTS)
    + ". No other words."
)
_ANSWER_PROMPT = (
    "You are a friendly, precise support agent for a SaaS product. Use the knowledge-base "
    "articles given. Never promise refunds; offer to escalate instead."
)
_REVIEW_PROMPT = (
    "Summarise this ticket and draft reply for a human reviewer in three bullet points."
)

_KB = {
    "billing": ["KB-101 Refunds and double charges", "KB-104 Plan changes and proration"],
    "technical": ["KB-201 Export limits", "KB-230 Webhook signatures", "KB-250 Mobile app crashes"],
    "account": ["KB-301 Seats and roles", "KB-310 Two-factor recovery", "KB-330 Data deletion"],
    "complaint": ["KB-401 Service credits", "KB-402 Escalation policy"],
    "feature_request": ["KB-501 Roadmap and feedback"],
}


@dataclass(frozen=True, slots=True)
class Outcome:
    """What happened to one ticket."""

    ticket_id: str
    intent: str
    route: str
    answer_model: str
    ok: bool


class SupportAssistant:
    """classify → retrieve → answer → route (auto reply or human review)."""

    def __init__(
        self, client: Any, *, answer_client: Any = None, prompt_version: str = "answer-v3"
    ) -> None:
        self.client = client
        # The answer step may go through a recovering wrapper (retries, fallbacks).
        self.answer_client = answer_client or client
        self.prompt_version = prompt_version

    def handle(self, ticket: Ticket) -> Outcome:
        """Answer one ticket end to end inside one trace."""
        with llmpulse.span(
            "handle_ticket", kind="chain", ticket_id=ticket.ticket_id, tier=ticket.tier
        ) as root:
            root.set_session(session_id=ticket.ticket_id, user_id=ticket.user_id)
            root.set_input(ticket.text)
            intent = self.classify(ticket)
            articles = self.retrieve(ticket, intent)
            answer, model, ok = self.answer(ticket, intent, articles)
            route = self.route(ticket, intent, model, ok)
            if route == "human_review":
                self.review(ticket, answer)
            root.set_output(answer)
            return Outcome(ticket.ticket_id, intent, route, model, ok)

    @llmpulse.observe(name="classify", kind="chain")
    def classify(self, ticket: Ticket) -> str:
        """Ask the small model for the intent label."""
        reply = self.client.chat.completions.create(
            model="gpt-4o-mini",
            messages=[
                {"role": "system", "content": _CLASSIFY_PROMPT},
                {"role": "user", "content": ticket.text},
            ],
            max_tokens=8,
            temperature=0,
            user=ticket.user_id,
        )
        label = (reply.choices[0].message.content or "").strip().lower()
        # The simulator writes filler text rather than a label; a real model would answer one of
        # INTENTS. Fall back to the ticket's true intent so routing behaves as in production.
        return label if label in INTENTS else ticket.intent

    @llmpulse.observe(name="retrieve", kind="retriever")
    def retrieve(self, ticket: Ticket, intent: str) -> list[str]:
        """Look up knowledge-base articles for the intent (an in-memory index here)."""
        articles = _KB[intent]
        llmpulse.get_current_span().set_attributes(
            {"retrieval.documents": len(articles), "retrieval.intent": intent}
        )
        return articles

    @llmpulse.observe(name="answer", kind="chain")
    def answer(self, ticket: Ticket, intent: str, articles: list[str]) -> tuple[str, str, bool]:
        """Draft the reply with the large model; returns (text, model that answered, ok)."""
        messages = [
            {"role": "system", "content": _ANSWER_PROMPT + "\nArticles:\n" + "\n".join(articles)},
            {"role": "user", "content": ticket.text},
        ]
        try:
            with llmpulse.using(prompt_version=self.prompt_version):
                reply = self.answer_client.chat.completions.create(
                    model="gpt-4o", messages=messages, max_tokens=1024, user=ticket.user_id
                )
        except Exception as exc:  # the pipeline degrades to a human, as a real one would
            llmpulse.get_current_span().set_status_error(exc)
            return "", "none", False
        return reply.choices[0].message.content or "", reply.model, True

    def route(self, ticket: Ticket, intent: str, model: str, ok: bool) -> str:
        """Decide whether a human reviews the reply: a branch decision records which way it went."""
        if not ok:
            why, route = "answer_failed", "human_review"
        elif intent == "complaint":
            why, route = "complaint", "human_review"
        elif model != "gpt-4o":
            why, route = "fallback_model", "human_review"
        elif ticket.tier == "enterprise" and intent == "technical":
            why, route = "enterprise_technical", "human_review"
        else:
            why, route = "confident", "auto_reply"
        llmpulse.record_branch(WORKFLOW, "answer", route, condition=why)
        return route

    @llmpulse.observe(name="human_review", kind="chain")
    def review(self, ticket: Ticket, answer: str) -> None:
        """Summarise the case for the human reviewer."""
        self.client.chat.completions.create(
            model="gpt-4o-mini",
            messages=[
                {"role": "system", "content": _REVIEW_PROMPT},
                {"role": "user", "content": ticket.text + "\n\n" + answer},
            ],
            max_tokens=120,
            user=ticket.user_id,
        )
