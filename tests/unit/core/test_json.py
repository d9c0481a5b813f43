"""compact_json: CPython's C encoder when it behaves, the public encoder otherwise, same text."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from llmpulse._json import _PROBE, _encoder, _spaced, compact_json, spaced_json

C_MAKE = json.encoder.c_make_encoder  # type: ignore[attr-defined]

SAMPLES: list[Any] = [
    _PROBE,
    {"gen_ai.request.temperature": 0.2, "tags": ["a", "b"], "deep": {"x": 1}},
    ["naïve café ✓", 2**70, -0.0, 1e300],
    "",
    {},
]


def _public(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))


class TestCompactJson:
    @pytest.mark.parametrize("value", SAMPLES)
    def test_same_text_as_the_public_encoder(self, value: Any) -> None:
        """The fast encoder writes exactly what json.dumps writes with the same options."""
        assert compact_json(value) == _public(value)

    def test_refuses_non_finite_numbers_and_foreign_objects(self) -> None:
        """NaN is a ValueError and an object a TypeError, as the store expects."""
        with pytest.raises(ValueError):
            compact_json({"x": math.nan})
        with pytest.raises(TypeError, match="object is not JSON-encodable"):
            compact_json({"x": object()})

    def test_the_c_encoder_is_used_when_it_behaves(self) -> None:
        """On CPython the probe passes and the C encoder is chosen (the speed this module is for)."""
        assert _encoder(C_MAKE).__name__ == "fast"


class TestFallback:
    """A changed private signature or behaviour falls back to the public encoder."""

    def test_a_changed_signature_falls_back(self) -> None:
        """A constructor that no longer takes these arguments gives the public encoder."""

        def new_signature(markers: Any, default: Any) -> Any:
            return C_MAKE(markers, default)

        encode = _encoder(new_signature)
        assert encode.__name__ != "fast"
        for value in SAMPLES:
            assert encode(value) == _public(value)

    def test_different_output_falls_back(self) -> None:
        """An encoder whose text differs from the public one (here: ASCII escapes) is not used."""

        def ascii_escaping(*args: Any) -> Any:
            args = list(args)
            args[2] = json.encoder.encode_basestring_ascii
            return C_MAKE(*args)

        encode = _encoder(ascii_escaping)
        assert encode.__name__ != "fast"
        assert encode({"é": "✓"}) == '{"é":"✓"}'

    def test_accepting_nan_falls_back(self) -> None:
        """An encoder that writes NaN (allow_nan ignored) is not used: the store must refuse it."""

        def allows_nan(*args: Any) -> Any:
            return C_MAKE(*args[:8], True)

        encode = _encoder(allows_nan)
        assert encode.__name__ != "fast"
        with pytest.raises(ValueError):
            encode(math.nan)


def _spaced_public(value: Any) -> str:
    return json.dumps(value, default=str, ensure_ascii=False)


class TestSpacedJson:
    """spaced_json: json.dumps(default=str, ensure_ascii=False), without building an encoder
    per call (it sizes a LangGraph state once per node)."""

    @pytest.mark.parametrize(
        "value",
        [*SAMPLES, {"n": math.nan, "i": -math.inf, 1: object, "t": (1, "é")}, [set()], None],
    )
    def test_same_text_as_json_dumps(self, value: Any) -> None:
        """The same text as json.dumps with the same options, odd values included."""
        assert spaced_json(value) == _spaced_public(value)

    def test_the_c_encoder_is_used_when_it_behaves(self) -> None:
        """On CPython the probe passes and the C encoder is chosen."""
        assert _spaced(C_MAKE).__name__ == "fast"

    def test_a_changed_constructor_falls_back(self) -> None:
        """A constructor whose output differs (ASCII escapes) gives the public encoder instead."""

        def ascii_escaping(*args: Any) -> Any:
            args = list(args)
            args[2] = json.encoder.encode_basestring_ascii
            return C_MAKE(*args)

        encode = _spaced(ascii_escaping)
        assert encode.__name__ != "fast"
        assert encode({"é": object}) == _spaced_public({"é": object})

    def test_a_value_containing_itself_raises(self) -> None:
        """No circular check: a value containing itself ends in RecursionError, not a hang."""
        loop: dict[str, Any] = {"a": 1}
        loop["self"] = loop
        with pytest.raises(RecursionError):
            spaced_json(loop)
