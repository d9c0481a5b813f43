"""Support tickets the demo pipeline answers: realistic text, a true intent, a customer tier."""

from __future__ import annotations

import random
from dataclasses import dataclass

__all__ = ["INTENTS", "Ticket", "make_tickets"]

INTENTS = ("billing", "technical", "account", "complaint", "feature_request")

_TEMPLATES: dict[str, tuple[str, ...]] = {
    "billing": (
        "I was charged twice for my {plan} subscription this month, order {order}. Can you refund one?",
        "Why did my invoice {order} go up from $49 to $79? Nobody told me about a price change.",
        "Please switch my {plan} plan to annual billing and tell me what I will save.",
        "My card ending 4242 was declined but the payment still shows as pending on {order}.",
    ),
    "technical": (
        "The export to CSV times out for projects over 10k rows. It started after yesterday's update.",
        "Webhooks to our endpoint return 401 since we rotated the signing secret. Logs attached.",
        "The mobile app crashes on launch on Android 14 after the {plan} upgrade.",
        "Search results are empty for any query with an apostrophe, like O'Brien.",
    ),
    "account": (
        "How do I add two more seats to our {plan} workspace without losing the admin settings?",
        "I lost access to my 2FA device, please help me get back into account {order}.",
        "Can you merge my two accounts? Both use the same email domain.",
        "Please delete all personal data for my account under GDPR article 17.",
    ),
    "complaint": (
        "This is the third time the dashboard was down during our board meeting. Unacceptable.",
        "Your support agent closed my ticket {order} without fixing anything. I want a manager.",
        "We are paying for {plan} and got worse uptime than the free tier. Considering leaving.",
    ),
    "feature_request": (
        "Could you add SSO with Okta for the {plan} plan? It's a blocker for our security review.",
        "It would be great to schedule reports weekly instead of only daily.",
        "Please support dark mode in the editor, my team works late.",
    ),
}
_PLANS = ("Starter", "Team", "Business", "Enterprise")


@dataclass(frozen=True, slots=True)
class Ticket:
    """One customer message with the intent a careful human would give it."""

    ticket_id: str
    text: str
    intent: str
    tier: str
    user_id: str


def make_tickets(n: int, seed: int) -> list[Ticket]:
    """``n`` tickets, the same for the same seed."""
    rng = random.Random(seed)
    weights = (0.3, 0.3, 0.2, 0.08, 0.12)
    tickets = []
    for i in range(n):
        intent = rng.choices(INTENTS, weights)[0]
        text = rng.choice(_TEMPLATES[intent]).format(
            plan=rng.choice(_PLANS), order=f"#{rng.randint(10000, 99999)}"
        )
        tier = rng.choices(("free", "pro", "enterprise"), (0.5, 0.35, 0.15))[0]
        tickets.append(
            Ticket(f"T{i:05d}", text, intent, tier, f"user-{rng.randint(1, max(2, n // 3)):04d}")
        )
    return tickets
