"""``/api/v1/alerts``: alerts, acknowledge/resolve, statistics, rules, silences, channels
(listed masked; ``POST /channels/{name}/test`` sends a test notification).

Reading needs ``read``; acknowledging, resolving, and changing rules and silences need
``admin``. Rules saved here are checked like a rules file (an unknown channel, a bad field)
and refused with a 422 naming the field, never accepted and then failing when they fire.
Silence times are returned in UTC (``...Z``) whatever offset they were given with.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Any, Literal

from fastapi import APIRouter, Body, Depends, Path, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.convertors import Convertor, register_url_convertor

from llmpulse._config_file import FieldError
from llmpulse.alerting import AlertEngine
from llmpulse.alerting._silences import new_silence
from llmpulse.server.deps import ADMIN, READ, get_state, get_store
from llmpulse.server.pagination import Page, decode_cursor, page_of, parse_time
from llmpulse.server.problems import Problem
from llmpulse.store import Store
from llmpulse.store.queries.alerts import AlertRecord, SilenceRecord

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/alerts", tags=["alerts"])


class _AlertId(Convertor[str]):
    """One path segment that is not a sub-resource name: ``PUT /alerts/statistics`` is then a
    405 (the path exists, the method does not) instead of an attempt to change alert
    "statistics"; any other segment reaches the route, whose scope check runs first."""

    regex = r"(?!(?:statistics|rules|silences|channels)$)[^/]+"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("llmpulse_alert_id", _AlertId())
_ID = Path(pattern=r"^[0-9]{1,18}$", description="The alert's id (a whole number).")
_ID_PUT = Path(alias="alert_id", pattern=r"^[0-9]{1,18}$", description="The alert's id.")

State = Literal["firing", "acknowledged", "resolved"]
Severity = Literal["info", "warning", "critical"]


def _iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class AlertOut(BaseModel):
    """One alert (an incident: from firing to resolved). Times are Unix seconds."""

    id: int
    fingerprint: str
    rule: str
    severity: str
    state: str  # firing | acknowledged | resolved
    labels: dict[str, str]
    summary: str
    value: float | None
    threshold: float | None
    baseline: float | None
    window_s: float | None
    evidence: dict[str, Any]
    started_at: float
    fired_at: float
    resolved_at: float | None
    resolved_by: str | None
    resolve_note: str | None
    acknowledged_at: float | None
    acknowledged_by: str | None
    ack_note: str | None
    escalation_level: int
    channels: list[str]

    @classmethod
    def of(cls, a: AlertRecord) -> AlertOut:
        """The body of an incident."""
        values = {f: getattr(a, f) for f in cls.model_fields if f != "state"}
        state = "acknowledged" if a.state == "firing" and a.acknowledged_at else a.state
        return cls(state=state, **values)


class HistoryEntry(BaseModel):
    """One thing that happened to an alert."""

    at: float
    kind: str
    who: str | None
    note: str | None


class AlertDetail(AlertOut):
    """An alert and its history."""

    history: list[HistoryEntry]


class AlertChange(BaseModel):
    """Acknowledge or resolve an alert, saying who and why."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, strict=True)

    action: Literal["acknowledge", "resolve"]
    who: str = Field(min_length=1, max_length=200)
    note: str | None = Field(default=None, max_length=4000)


class Statistics(BaseModel):
    """Alerts fired in the last ``days_back`` days: counts, mean times to ack and resolve."""

    days_back: int
    total: int
    by_severity: dict[str, int]
    by_rule: dict[str, int]
    by_state: dict[str, int]
    acknowledged: int
    resolved: int
    mtta_seconds: float | None
    mttr_seconds: float | None


class RuleOut(BaseModel):
    """A rule as the engine evaluates it; ``source`` is file, api or code."""

    name: str
    source: str
    spec: dict[str, Any]


class MatcherIn(BaseModel):
    """``name op value``; op one of = != =~ !~ (regular expressions match the whole value)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    name: str = Field(min_length=1, max_length=200)
    op: Literal["=", "!=", "=~", "!~"] = "="
    value: str = Field(max_length=1000)


class SilenceIn(BaseModel):
    """A silence: alerts matching every matcher send nothing from starts_at to ends_at."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, strict=True)

    matchers: list[MatcherIn] = Field(min_length=1, max_length=50)
    starts_at: str | None = Field(default=None, description="Unix seconds or ISO 8601; default now")
    ends_at: str = Field(description="Unix seconds or ISO 8601 (with an offset, or UTC)")
    created_by: str = Field(min_length=1, max_length=200)
    comment: str = Field(default="", max_length=4000)


class SilenceOut(BaseModel):
    """A silence; times in UTC ISO 8601."""

    id: str
    matchers: list[dict[str, str]]
    starts_at: str
    ends_at: str
    state: str  # pending | active | expired
    created_by: str
    comment: str
    created_at: str

    @classmethod
    def of(cls, s: SilenceRecord, now: float) -> SilenceOut:
        """The body of a silence."""
        state = "pending" if now < s.starts_at else "active" if now < s.ends_at else "expired"
        return cls(
            id=s.id, matchers=s.matchers, starts_at=_iso(s.starts_at) or "",
            ends_at=_iso(s.ends_at) or "", state=state, created_by=s.created_by,
            comment=s.comment, created_at=_iso(s.created_at) or "",
        )  # fmt: skip


def _engine(request: Request) -> AlertEngine:
    engine: AlertEngine | None = getattr(get_state(request), "alerts", None)
    if engine is None:  # pragma: no cover - create_app always builds one
        raise Problem(503, "alerting is not configured on this server", kind="unavailable")
    return engine


def _field_problem(exc: FieldError) -> Problem:
    return Problem(422, str(exc), kind="validation", field=str(exc.field))


@router.get("", response_model=Page[AlertOut], dependencies=[Depends(READ)])
def list_alerts(
    model: str | None = Query(None, max_length=512),
    severity: Severity | None = Query(None),
    state: State | None = Query(None),
    rule: str | None = Query(None, max_length=128),
    active_only: bool = Query(False, description="Only alerts still firing."),
    start: str | None = Query(None, description="Fired at or after (Unix seconds or ISO 8601)."),
    end: str | None = Query(None, description="Fired before (Unix seconds or ISO 8601)."),
    limit: int = Query(100, ge=1, le=1000),
    cursor: str | None = Query(None, max_length=1024),
    store: Store = Depends(get_store),
) -> Page[AlertOut]:
    """Alerts newest first, filtered; cursor-paged."""
    filters = {
        "model": model, "severity": severity, "state": state, "rule": rule,
        "active_only": active_only, "start": parse_time(start, "start"),
        "end": parse_time(end, "end"),
    }  # fmt: skip
    after = decode_cursor("alerts", cursor, (float, int))
    rows = store.alert_page(filters=filters, after=after, limit=limit + 1)
    return page_of("alerts", [(AlertOut.of(a), (a.fired_at, a.id)) for a in rows], limit)


@router.get("/statistics", response_model=Statistics, dependencies=[Depends(READ)])
def statistics(
    days_back: int = Query(7, ge=1, le=3660), store: Store = Depends(get_store)
) -> Statistics:
    """Counts by severity, rule and state; MTTA and MTTR of alerts fired in the window."""
    stats = store.alert_statistics(time.time() - days_back * 86400.0)
    return Statistics(days_back=days_back, **stats)


@router.get("/rules", response_model=list[RuleOut], dependencies=[Depends(READ)])
def list_rules(request: Request) -> list[RuleOut]:
    """Every rule the engine evaluates: from the rules file, from code, saved through the API."""
    return [_rule_out(r) for r in _engine(request).rules().values()]


def _rule_out(rule: Any) -> RuleOut:
    spec = rule.to_spec() if rule.type != "callable" else {"name": rule.name, "type": "callable"}
    return RuleOut(name=rule.name, source=rule.source, spec=spec)


@router.post("/rules", response_model=RuleOut, status_code=201, dependencies=[Depends(ADMIN)])
def create_rule(request: Request, spec: dict[str, Any] = Body(...)) -> RuleOut:  # noqa: B008
    """Save a new rule (the rules-file format); 409 when the name exists."""
    engine = _engine(request)
    if isinstance(spec.get("name"), str) and spec["name"] in engine.rules():
        raise Problem(409, f"rule {spec['name']!r} exists; PUT /api/v1/alerts/rules/"
                      f"{spec['name']} replaces it", kind="conflict")  # fmt: skip
    try:
        rule, _ = engine.save_rule(spec)
    except FieldError as exc:
        raise _field_problem(exc) from None
    return _rule_out(rule)


def _rule(engine: AlertEngine, name: str) -> Any:
    rule = engine.rules().get(name)
    if rule is None:
        raise Problem(404, f"no alert rule {name!r}", kind="not-found")
    return rule


@router.get("/rules/{name}", response_model=RuleOut, dependencies=[Depends(READ)])
def get_rule(request: Request, name: str = Path(max_length=128)) -> RuleOut:
    """One rule."""
    return _rule_out(_rule(_engine(request), name))


@router.put("/rules/{name}", response_model=RuleOut, dependencies=[Depends(ADMIN)])
def replace_rule(
    request: Request,
    name: str = Path(max_length=128),
    spec: dict[str, Any] = Body(...),  # noqa: B008
) -> RuleOut:
    """Create or replace a rule saved through the API (rules from the file are read-only)."""
    if spec.setdefault("name", name) != name:
        raise Problem(422, f"name: the body says {spec['name']!r}, the path {name!r}",
                      kind="validation", field="name")  # fmt: skip
    try:
        rule, _ = _engine(request).save_rule(spec)
    except FieldError as exc:
        raise _field_problem(exc) from None
    return _rule_out(rule)


@router.delete("/rules/{name}", status_code=204, dependencies=[Depends(ADMIN)])
def delete_rule(request: Request, name: str = Path(max_length=128)) -> Response:
    """Delete a rule saved through the API; its firing alerts resolve at the next evaluation."""
    engine = _engine(request)
    rule = _rule(engine, name)
    if rule.source != "api":
        raise Problem(409, f"rule {name!r} comes from the {rule.source}; remove it there",
                      kind="conflict")  # fmt: skip
    engine.store.delete_alert_rule(name)
    return Response(status_code=204)


@router.get("/silences", response_model=list[SilenceOut], dependencies=[Depends(READ)])
def list_silences(
    include_expired: bool = Query(False), store: Store = Depends(get_store)
) -> list[SilenceOut]:
    """Silences that have not ended (or all), newest first."""
    now = time.time()
    return [
        SilenceOut.of(s, now) for s in store.list_silences(now, include_expired=include_expired)
    ]


@router.post("/silences", response_model=SilenceOut, status_code=201, dependencies=[Depends(ADMIN)])
def create_silence(body: SilenceIn, store: Store = Depends(get_store)) -> SilenceOut:
    """Silence matching alerts until ends_at (refused if it would match every alert)."""
    now = time.time()
    starts = parse_time(body.starts_at, "starts_at")
    ends = parse_time(body.ends_at, "ends_at")
    if ends is None:
        raise Problem(422, "ends_at: required (Unix seconds or ISO 8601)", kind="validation",
                      field="ends_at")  # fmt: skip
    try:
        record = new_silence(
            [m.model_dump() for m in body.matchers], starts_at=now if starts is None else starts,
            ends_at=ends, created_by=body.created_by, comment=body.comment, now=now,
        )  # fmt: skip
    except FieldError as exc:
        raise _field_problem(exc) from None
    store.add_silence(record)
    return SilenceOut.of(record, now)


@router.delete("/silences/{silence_id}", response_model=SilenceOut, dependencies=[Depends(ADMIN)])
def expire_silence(
    silence_id: str = Path(max_length=36), store: Store = Depends(get_store)
) -> SilenceOut:
    """End a silence now (it stays listed as expired)."""
    now = time.time()
    found = store.expire_silence(silence_id, now)
    if found is None:
        raise Problem(404, f"no silence {silence_id!r}", kind="not-found")
    return SilenceOut.of(found, now)


@router.get("/channels", response_model=list[dict[str, Any]], dependencies=[Depends(READ)])
def list_channels(request: Request) -> list[dict[str, Any]]:
    """The configured channels, secrets masked."""
    return [channel.describe() for channel in _engine(request).channels.values()]


class ChannelTest(BaseModel):
    """Who asks for a test notification."""

    model_config = ConfigDict(extra="forbid", strict=True)

    who: str = Field(min_length=1, max_length=200)


class ChannelTestOut(BaseModel):
    """A test notification the channel's receiver accepted."""

    channel: str
    delivered: bool
    idempotency_key: str


@router.post("/channels/{name}/test", response_model=ChannelTestOut, dependencies=[Depends(ADMIN)])
def send_test_notification(
    request: Request, body: ChannelTest, name: str = Path(max_length=128)
) -> ChannelTestOut:
    """Send a test notification through a configured channel now, under the same network guard
    as every notification; 502 with the reason (never a URL or the receiver's answer) if it fails."""
    from llmpulse.alerting.channels import DeliveryError

    engine = _engine(request)
    if name not in engine.channels:
        known = ", ".join(sorted(engine.channels)) or "none are configured"
        raise Problem(404, f"no channel {name!r} (configured: {known})", kind="not-found")
    try:
        key = engine.send_test(name, body.who)
    except DeliveryError as exc:
        raise Problem(502, f"channel {name!r}: {exc}", kind="delivery-failed",
                      retryable=exc.retryable) from None  # fmt: skip
    return ChannelTestOut(channel=name, delivered=True, idempotency_key=key)


@router.get(
    "/{alert_id:llmpulse_alert_id}", response_model=AlertDetail, dependencies=[Depends(READ)]
)
def get_alert(alert_id: str = _ID, store: Store = Depends(get_store)) -> AlertDetail:
    """One alert with its history."""
    alert = store.get_alert(int(alert_id))
    if alert is None:
        raise Problem(404, f"no alert {alert_id}", kind="not-found")
    history = [
        HistoryEntry(at=at, kind=k, who=w, note=n)
        for at, k, w, n in store.alert_history(int(alert_id))
    ]
    return AlertDetail(**AlertOut.of(alert).model_dump(), history=history)


@router.put("/{alert_id:llmpulse_alert_id}", response_model=AlertOut, dependencies=[Depends(ADMIN)])
def change_alert(body: AlertChange, request: Request, alert_id_text: str = _ID_PUT) -> AlertOut:
    """Acknowledge (no more repeats or escalation) or resolve (sends the resolved notice)."""
    alert_id = int(alert_id_text)
    engine = _engine(request)
    before = engine.store.get_alert(alert_id)
    if before is None:
        raise Problem(404, f"no alert {alert_id}", kind="not-found")
    change = engine.acknowledge if body.action == "acknowledge" else engine.resolve
    after = change(alert_id, body.who, body.note)
    if after is None or after == before:
        shown = AlertOut.of(before).state
        raise Problem(409, f"alert {alert_id} is {shown}: it cannot be "
                      f"{'acknowledged' if body.action == 'acknowledge' else 'resolved'}",
                      kind="conflict")  # fmt: skip
    return AlertOut.of(after)
