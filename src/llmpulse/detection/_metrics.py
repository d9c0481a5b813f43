"""What a metric's name says about it: which direction is worse, and whether it can be negative."""

from __future__ import annotations

import re

__all__ = ["cannot_be_negative", "higher_is_better_for"]

# Checked first: names that contain a "worse when higher" word but mean a good thing
# (tokens_per_second is throughput, success_rate contains "rate").
_HIGHER_BETTER = re.compile(
    r"accuracy|throughput|tokens?_per_s(ec(ond)?)?\b|tokens?_per_second|\btps\b|success|"
    r"\bpass(_rate|ed)?\b|\bscore\b|\bf1\b|precision|recall|hit_rate|quality|bleu|rouge|"
    r"\bexact_match\b|\bauc\b|uptime|availability|goodput"
)
_LOWER_BETTER = re.compile(
    r"latency|duration|\bttft\b|time_to_first|elapsed|_ms\b|_seconds?\b|\bcost|usd|price|"
    r"tokens|error|fail|timeout|retr(y|ies)|\bloss\b|drop|reject|refus|rate_limit|429|"
    r"perplexity|queue|memory|\bcpu\b"
)
_NON_NEGATIVE = re.compile(
    r"latency|duration|\bttft\b|time_to_first|elapsed|_ms\b|_seconds?\b|cost|usd|price|"
    r"tokens|count|rate|ratio|accuracy|throughput|requests|bytes|errors?\b|calls"
)


def _words(metric: str) -> str:
    """The metric name lower-cased with separators unified, so word boundaries work."""
    return re.sub(r"[\s.\-/:]+", "_", metric.strip().lower())


def higher_is_better_for(metric: str | None) -> bool | None:
    """True/False when the name says which direction is better, None when it does not."""
    if not metric:
        return None
    name = _words(metric)
    if _HIGHER_BETTER.search(name):
        return True
    if _LOWER_BETTER.search(name):
        return False
    return None


def cannot_be_negative(metric: str) -> bool:
    """Whether a negative value of this metric can only be a recording error."""
    return bool(_NON_NEGATIVE.search(_words(metric)))
