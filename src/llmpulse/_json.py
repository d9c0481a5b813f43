"""Compact, strict JSON text: the one encoding of attributes and documents in stored rows.

The store encodes attribute dictionaries with it, and so does the SDK when it builds rows for
the embedded store itself: both must produce the same text for the same value.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

__all__ = ["compact_json", "spaced_json", "spaced_json_strict"]


def _not_json(value: object) -> None:
    raise TypeError(f"{type(value).__name__} is not JSON-encodable")


# What the fast encoder must reproduce exactly before it is trusted: nesting, non-ASCII kept,
# escapes, every scalar type; and the two refusals (non-finite numbers, foreign objects).
_PROBE: dict[str, Any] = {"a": [1, -2.5, True, False, None], "é": {"q": 'x"\\\n\u2028'}, "": []}
_REFUSED: tuple[tuple[object, type[Exception]], ...] = (
    (float("nan"), ValueError),
    (float("inf"), ValueError),
    (object(), TypeError),
)


def _encoder(make: Callable[..., Any] | None = None) -> Callable[[Any], str]:
    """The C encoder directly (about a third cheaper than ``json.dumps``) when it behaves.

    ``c_make_encoder`` is CPython's private constructor, called positionally: if its
    signature or behaviour ever changes (another interpreter, a new release), the probe below
    fails and the public ``JSONEncoder`` is used instead, which gives the same text.
    ``make`` replaces the C constructor (tests); by default it is looked up in ``json.encoder``.
    """
    reference = json.JSONEncoder(
        ensure_ascii=False, allow_nan=False, separators=(",", ":"), default=_not_json
    ).encode
    if make is None:
        make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:  # interpreters without the C accelerator
        return reference
    try:
        encoder = make(
            None, _not_json, json.encoder.encode_basestring, None, ":", ",", False, False, False
        )

        def fast(value: Any) -> str:
            return "".join(encoder(value, 0))

        if fast(_PROBE) != reference(_PROBE):
            return reference
        for value, error in _REFUSED:
            try:
                fast(value)
            except error:
                continue
            return reference
    except Exception:  # a changed signature (TypeError) or anything else: stay correct
        return reference
    return fast


#: ``value`` as compact JSON (no spaces, non-ASCII kept, NaN and infinities refused): raises
#: ``TypeError`` for what JSON cannot encode and ``ValueError`` for non-finite numbers.
compact_json: Callable[[Any], str] = _encoder()


def _spaced(
    make: Callable[..., Any] | None = None, default: Callable[[Any], Any] = str
) -> Callable[[Any], str]:
    """``json.dumps(value, default=str, ensure_ascii=False)`` without its per-call cost
    (``default``: what is done with a value JSON has no form for; ``str`` by default).

    ``JSONEncoder.encode`` builds a new C encoder on every call, which is most of the cost of
    encoding a small value (a LangGraph state, measured once per node). No circular check: a
    value that contains itself raises ``RecursionError`` instead of ``ValueError``. Trusted only
    when it gives the public encoder's text for a probe, as ``_encoder`` is.
    """
    reference = json.JSONEncoder(default=default, ensure_ascii=False, check_circular=False).encode
    if make is None:
        make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:
        return reference
    probe: dict[Any, Any] = {**_PROBE, "n": [float("nan"), float("-inf")], 1: 2.0}
    if default is str:
        probe["o"] = object
    try:
        encoder = make(
            None, default, json.encoder.encode_basestring, None, ": ", ", ", False, False, True
        )

        def fast(value: Any) -> str:
            return "".join(encoder(value, 0))

        if fast(probe) != reference(probe):
            return reference
    except Exception:  # a changed signature (TypeError) or anything else: stay correct
        return reference
    return fast


#: ``value`` as JSON with the default separators, non-ASCII kept, anything else as its
#: ``str``: the text whose length is a LangGraph state's size.
spaced_json: Callable[[Any], str] = _spaced()

#: ``spaced_json`` that refuses (``TypeError``) what JSON has no form for, instead of its text.
spaced_json_strict: Callable[[Any], str] = _spaced(default=_not_json)
