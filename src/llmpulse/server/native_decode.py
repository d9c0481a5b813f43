"""Native ingest bodies into records without pydantic, for the batches pydantic would accept.

``POST /api/v1/ingest`` validates its body with the strict pydantic models of
``llmpulse.server.routers.ingest``; building those models cost about as much as storing the
spans. ``Decoder.decode(body)`` does the same checks in plain Python on ``json.loads`` output and
returns the ``Span``/``MetricPoint``/``Run`` records directly, or ``None`` as soon as anything is
not plainly valid. The route then validates the body with pydantic as before, so every error
(its status, its wording, the fields it names) comes from pydantic exactly as it did: this path
only ever says "valid, here are the records" or "ask pydantic".

It declines (returns ``None``) more often than pydantic refuses, never the other way round:

* a body that is not strict UTF-8 JSON, or holds a ``\\uD800``-``\\uDFFF`` escape (pydantic
  refuses a lone surrogate; a valid pair merely takes the pydantic path);
* an unknown field, a missing required one, a value of another JSON type than the model's
  strict type (``1.0`` for an int, ``true`` for a number), text or a number out of its bounds,
  a non-finite number in a typed field.

The checks are read from the pydantic models themselves (field names, required fields, types,
``min_length``/``max_length``/``ge``/``le``), so a field added to a model is checked here too;
a field of a shape this module does not know makes ``Decoder`` refuse to build (a test builds
it), rather than check less.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import types
import typing
from collections.abc import Callable
from typing import Any, Literal, Union

from pydantic import BaseModel

from llmpulse.schema import MetricPoint, Run, Span, SpanEvent

__all__ = ["Decoder", "Records"]

Records = tuple[list[Span], list[MetricPoint], list[Run]]

_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89abcdefABCDEF]")
_NONE = type(None)
_LISTS = frozenset(("spans", "metric_points", "runs"))


class _Decline(Exception):
    """Not plainly valid: let pydantic decide."""


# A field's check: the exact JSON types (as json.loads gives them) it may hold, and a function
# run on values that need more than their type checked (bounds, conversion), or None.
_Check = tuple[frozenset[type], Any]


class _Model:
    """The checks of one pydantic model: its fields and which are required."""

    __slots__ = ("fields", "model", "required")

    def __init__(self, model: type[BaseModel], events: _Model | None) -> None:
        config = model.model_config
        if config.get("extra") != "forbid" or not config.get("strict"):
            raise TypeError(f"{model.__name__}: the fast path assumes extra='forbid', strict=True")
        if config.get("allow_inf_nan", True):
            raise TypeError(f"{model.__name__}: the fast path assumes allow_inf_nan=False")
        self.model = model
        self.fields: dict[str, _Check] = {
            name: _compile(f"{model.__name__}.{name}", info.annotation, info.metadata, events)
            for name, info in model.model_fields.items()
        }
        self.required = tuple(n for n, info in model.model_fields.items() if info.is_required())


def _bounds(where: str, metadata: list[Any]) -> tuple[Any, Any]:
    low = high = None
    for item in metadata:
        known = False
        for attr in ("min_length", "ge"):
            if getattr(item, attr, None) is not None:
                low, known = getattr(item, attr), True
        for attr in ("max_length", "le"):
            if getattr(item, attr, None) is not None:
                high, known = getattr(item, attr), True
        if not known:
            raise TypeError(f"{where}: constraint {item!r} is unknown to the fast path")
    return low, high


def _compile(where: str, annotation: Any, metadata: list[Any], events: _Model | None) -> _Check:
    optional = False
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) in (Union, types.UnionType) and _NONE in args:
        rest = [a for a in args if a is not _NONE]
        if len(rest) == 1:
            optional, annotation = True, rest[0]
    low, high = _bounds(where, metadata)
    found = _check_of(annotation, low, high, events)
    if found is None:
        raise TypeError(f"{where}: type {annotation!r} is unknown to the fast path")
    types_, check = found
    return frozenset({*types_, *((_NONE,) if optional else ())}), check


def _check_of(
    annotation: Any, low: Any, high: Any, events: _Model | None
) -> tuple[tuple[type, ...], Any] | None:
    """The JSON types a value of ``annotation`` may have and the check it needs, or None."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    unbounded = low is None and high is None
    if annotation is str:
        return (str,), None if unbounded else _length(low, high)
    if annotation is float:
        return (float, int), _number(low, high)
    if annotation is int:
        return (int,), None if unbounded else _range(low, high)
    if origin is Literal and all(type(a) is str for a in args):
        return (str,), _one_of(frozenset(args))
    if origin is dict and args and args[0] is str and unbounded:
        by_value = {Any: None, str: _texts, float: _numbers}
        if args[1] in by_value:
            return (dict,), by_value[args[1]]
    if origin is list and events is not None and args == (events.model,) and unbounded:
        return (list,), _events(events)
    return None


def _length(low: Any, high: Any) -> Any:
    def check(value: Any) -> Any:
        if value is not None and (
            (low is not None and len(value) < low) or (high is not None and len(value) > high)
        ):
            raise _Decline
        return value

    return check


def _range(low: Any, high: Any) -> Any:
    def check(value: Any) -> Any:
        if value is not None and (
            (low is not None and value < low) or (high is not None and value > high)
        ):
            raise _Decline
        return value

    return check


def _number(low: Any, high: Any) -> Any:
    def check(value: Any) -> Any:
        # Strict pydantic takes a JSON integer for a float (1 -> 1.0), never a bool.
        if value is None:
            return None
        try:
            number = float(value)
        except OverflowError:
            raise _Decline from None
        if not math.isfinite(number) or (
            (low is not None and number < low) or (high is not None and number > high)
        ):
            raise _Decline
        return number

    return check


def _one_of(choices: frozenset[str]) -> Any:
    def check(value: Any) -> Any:
        if value is not None and value not in choices:
            raise _Decline
        return value

    return check


def _texts(value: Any) -> Any:
    if value is not None:
        for v in value.values():
            if type(v) is not str:
                raise _Decline
    return value


_any_number = _number(None, None)


def _numbers(value: Any) -> Any:
    if value is None:
        return None
    out = {}
    for k, v in value.items():
        if type(v) is not float and type(v) is not int:
            raise _Decline
        out[k] = _any_number(v)
    return out


def _events(spec: _Model) -> Any:
    def check(value: Any) -> Any:
        if value is None:
            return None
        out = []
        for node in value:
            fields = _checked(spec, node)
            out.append(SpanEvent(fields["name"], fields["time"], fields.get("attributes", {})))
        return out

    return check


def _checked(spec: _Model, node: Any) -> dict[str, Any]:
    """``node`` (a JSON object of ``json.loads``, changed in place) with each value checked and
    converted as pydantic would; raises ``_Decline`` at the first doubt."""
    if type(node) is not dict:
        raise _Decline
    for name in spec.required:
        if name not in node:
            raise _Decline
    fields = spec.fields
    for key, value in node.items():
        f = fields.get(key)
        if f is None or type(value) not in f[0]:
            raise _Decline
        check = f[1]
        if check is not None:
            converted = check(value)
            if converted is not value:
                node[key] = converted  # same keys: changing values while iterating is allowed
    return node


class Decoder:
    """Checks compiled from the ingest models (``IngestBatch`` and the models of its lists)."""

    def __init__(
        self,
        batch: type[BaseModel],
        span: type[BaseModel],
        event: type[BaseModel],
        point: type[BaseModel],
        run: type[BaseModel],
    ) -> None:
        if set(batch.model_fields) != _LISTS:
            raise TypeError(f"{batch.__name__}: the fast path knows the lists {sorted(_LISTS)}")
        self._event = _Model(event, None)
        self._span = _Model(span, self._event)
        self._point = _Model(point, None)
        self._run = _Model(run, None)
        for model, record in ((span, Span), (event, SpanEvent), (point, MetricPoint), (run, Run)):
            _same_defaults(model, record)
        self._new_span = _builder(Span)

    def decode(self, body: bytes) -> Records | None:
        """The records of a valid body, or ``None``: validate it with pydantic instead."""
        if _SURROGATE_ESCAPE.search(body):
            return None
        try:
            document = json.loads(body.decode("utf-8"))
        except ValueError:  # not UTF-8, not JSON (UnicodeDecodeError is a ValueError)
            return None
        try:
            return self._records(document)
        except (_Decline, TypeError, KeyError):
            return None

    def _records(self, document: Any) -> Records:
        if type(document) is not dict or any(key not in _LISTS for key in document):
            raise _Decline
        span, new_span = self._span, self._new_span
        spans = [new_span(_checked(span, node)) for node in _list(document.get("spans", []))]
        points = [
            MetricPoint(**_checked(self._point, node))
            for node in _list(document.get("metric_points", []))
        ]
        runs = [Run(**_checked(self._run, node)) for node in _list(document.get("runs", []))]
        return spans, points, runs


def _builder(record: type) -> Callable[[dict[str, Any]], Any]:
    """``record(**node)`` for a checked node, its fields passed by position instead: matching
    some twenty keywords was most of the cost of a ``Span`` (3.7 µs of it against 1.5 µs).
    Fields left out get the dataclass's defaults, a fresh one from a default factory."""
    fields = dataclasses.fields(record)
    if any(not f.init or f.kw_only for f in fields):  # not positional: keywords as before
        return lambda node: record(**node)
    env: dict[str, Any] = {"record": record}
    args = []
    for i, f in enumerate(fields):
        if f.default is not dataclasses.MISSING:
            env[f"default{i}"] = f.default
            args.append(f"get({f.name!r}, default{i})")
        elif f.default_factory is not dataclasses.MISSING:
            env[f"factory{i}"] = f.default_factory
            args.append(f"(node[{f.name!r}] if {f.name!r} in node else factory{i}())")
        else:
            args.append(f"node[{f.name!r}]")
    source = f"def build(node):\n    get = node.get\n    return record({', '.join(args)})\n"
    exec(source, env)  # noqa: S102 - generated from the dataclass's own fields, as dataclasses does
    build: Callable[[dict[str, Any]], Any] = env["build"]
    return build


def _same_defaults(model: type[BaseModel], record: type) -> None:
    """A field left out must get the same value from the record's dataclass as from the model,
    since this path builds records from the fields sent only."""
    defaults = {}
    for f in dataclasses.fields(record):
        if f.default is not dataclasses.MISSING:
            defaults[f.name] = f.default
        elif f.default_factory is not dataclasses.MISSING:
            defaults[f.name] = f.default_factory()
    for name, info in model.model_fields.items():
        if name not in {f.name for f in dataclasses.fields(record)}:
            raise TypeError(f"{model.__name__}.{name} is not a field of {record.__name__}")
        if info.is_required():
            continue
        if name not in defaults or defaults[name] != info.get_default(call_default_factory=True):
            raise TypeError(
                f"{model.__name__}.{name}: its default differs from {record.__name__}'s"
            )


def _list(value: Any) -> list[Any]:
    if type(value) is not list:
        raise _Decline
    return value
