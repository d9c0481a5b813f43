"""The tables llmpulse keeps, as SQLAlchemy 2 ``Mapped`` models.

One ``MetaData`` with a naming convention (constraint names are stable across SQLite and
PostgreSQL, which Alembic needs). Types that differ per backend use ``with_variant``: JSONB on
PostgreSQL, and ``INTEGER PRIMARY KEY`` (the rowid alias) for surrogate keys on SQLite.

* ``spans``: raw spans, one row each (deleted after the raw retention).
* ``traces``: per-trace totals kept on ingest in the same transaction as the spans (first
  start, last end, last start, span count, errors, tokens, cost), so a trace search pages
  over traces instead of grouping every span of its window (see store/_traces.py).
* ``metric_points``: raw metric points (same retention as spans), unique by ``point_id``
  when they have one (the SDK's idempotency key).
* ``runs``: experiment and benchmark runs, upserted by ``run_id``.
* ``rollup_keys``: the distinct (kind, name, model, provider, prompt_version, branch) keys,
  ``''`` for an absent part (never NULL, so the unique constraint holds).
* ``api_keys``: server API keys, the secret kept only as its SHA-256.
* ``models``: the model catalog (provider, per-token prices, limits, type, active).
* ``rollups``: per-minute and per-hour aggregates of spans per key (sums and a latency
  histogram), maintained on ingest in the same transaction; the primary key is the upsert
  target. Kept longer than raw rows.
* ``alert_*``: alert rules, series state, incidents and their history, silences, the
  notification outbox and the evaluator lease (see llmpulse.alerting).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Double,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = [
    "AlertEventRow",
    "AlertGroupRow",
    "AlertLeaseRow",
    "AlertOutboxRow",
    "AlertRow",
    "AlertRuleRow",
    "AlertSeriesRow",
    "AlertSilenceRow",
    "ApiKeyRow",
    "MetricPointRow",
    "ModelRow",
    "RollupKeyRow",
    "RollupRow",
    "RunRow",
    "SpanRow",
    "TraceRow",
    "metadata",
]

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)

# JSON documents: JSONB on PostgreSQL (indexable, compact), JSON text elsewhere.
JsonDoc = JSON().with_variant(JSONB(), "postgresql")
# Surrogate keys: BIGINT identity on PostgreSQL, the rowid alias on SQLite.
RowId = BigInteger().with_variant(Integer(), "sqlite")
# Dense histogram counts: bigint[] on PostgreSQL, little-endian int64 bytes elsewhere.
HistArray = LargeBinary().with_variant(ARRAY(BigInteger()), "postgresql")


class Base(DeclarativeBase):
    """Declarative base bound to the shared ``metadata``."""

    metadata = metadata


class SpanRow(Base):
    """One raw span."""

    __tablename__ = "spans"
    # A trace's spans in start order (pages of one large trace read one index range); branch
    # spans by decision point and time (a workflow's runs in a window: queries/workflows.py).
    __table_args__ = (
        Index(None, "trace_id", "start_time", "id"),
        Index(
            "ix_spans_branch_name_start_time", "name", "start_time",
            sqlite_where=text("kind = 'branch'"), postgresql_where=text("kind = 'branch'"),
        ),
    )  # fmt: skip

    id: Mapped[int] = mapped_column(RowId, primary_key=True, autoincrement=True)
    span_id: Mapped[str] = mapped_column(String(64), unique=True)
    trace_id: Mapped[str] = mapped_column(String(64), index=True)
    parent_id: Mapped[str | None] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(32))
    start_time: Mapped[float] = mapped_column(Double, index=True)
    end_time: Mapped[float] = mapped_column(Double)
    latency_ms: Mapped[float] = mapped_column(Double)
    status: Mapped[str] = mapped_column(String(16))
    error_type: Mapped[str | None] = mapped_column(Text)
    error_message: Mapped[str | None] = mapped_column(Text)
    model: Mapped[str | None] = mapped_column(Text)
    provider: Mapped[str | None] = mapped_column(Text)
    prompt_version: Mapped[str | None] = mapped_column(Text)
    input_tokens: Mapped[int | None] = mapped_column(BigInteger)
    output_tokens: Mapped[int | None] = mapped_column(BigInteger)
    total_tokens: Mapped[int | None] = mapped_column(BigInteger)
    cache_read_tokens: Mapped[int | None] = mapped_column(BigInteger)
    cache_write_tokens: Mapped[int | None] = mapped_column(BigInteger)
    reasoning_tokens: Mapped[int | None] = mapped_column(BigInteger)
    cost_usd: Mapped[float | None] = mapped_column(Double)
    ttft_ms: Mapped[float | None] = mapped_column(Double)
    session_id: Mapped[str | None] = mapped_column(Text)
    user_id: Mapped[str | None] = mapped_column(Text)
    service: Mapped[str | None] = mapped_column(Text)
    input: Mapped[str | None] = mapped_column(Text)
    output: Mapped[str | None] = mapped_column(Text)
    attributes: Mapped[dict[str, Any]] = mapped_column(JsonDoc)
    events: Mapped[list[Any]] = mapped_column(JsonDoc)


class TraceRow(Base):
    """Totals of one trace over all its stored spans, kept by ingest and retention (0007)."""

    __tablename__ = "traces"
    # Newest first by first start, the checks of a minimum duration or cost in the index itself;
    # traces that began before a window but have a span in it, by their last span's start.
    __table_args__ = (
        Index(None, "start_time", "trace_id", "end_time", "cost_usd"),
        Index(None, "last_start", "start_time", "trace_id"),
        {"sqlite_with_rowid": False},  # one b-tree by trace id on SQLite, not a rowid's two
    )

    trace_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    start_time: Mapped[float] = mapped_column(Double)  # the first span's start
    end_time: Mapped[float] = mapped_column(Double)  # the last span's end
    last_start: Mapped[float] = mapped_column(Double)  # the last span's start
    spans: Mapped[int] = mapped_column(BigInteger)
    errors: Mapped[int] = mapped_column(BigInteger)
    input_tokens: Mapped[int] = mapped_column(BigInteger)
    output_tokens: Mapped[int] = mapped_column(BigInteger)
    total_tokens: Mapped[int] = mapped_column(BigInteger)
    cost_usd: Mapped[float | None] = mapped_column(Double)  # NULL: no span of it has a price


class MetricPointRow(Base):
    """One raw metric point."""

    __tablename__ = "metric_points"
    __table_args__ = (
        Index(None, "name", "timestamp"),
        Index(None, "run_id", "name", "step"),
        # The idempotency key: a point sent again is not stored twice (NULL: no key).
        Index(None, "point_id", unique=True),
    )

    id: Mapped[int] = mapped_column(RowId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(Text)
    value: Mapped[float] = mapped_column(Double)
    timestamp: Mapped[float] = mapped_column(Double, index=True)
    labels: Mapped[dict[str, str]] = mapped_column(JsonDoc)
    run_id: Mapped[str | None] = mapped_column(String(128))
    step: Mapped[int | None] = mapped_column(BigInteger)
    point_id: Mapped[str | None] = mapped_column(String(64))


class RunRow(Base):
    """One experiment or benchmark run (upserted by ``run_id``)."""

    __tablename__ = "runs"
    __table_args__ = (Index(None, "started_at"),)

    run_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(64))
    experiment: Mapped[str | None] = mapped_column(Text)
    model: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(32))
    started_at: Mapped[float] = mapped_column(Double)
    ended_at: Mapped[float | None] = mapped_column(Double)
    params: Mapped[dict[str, Any]] = mapped_column(JsonDoc)
    metrics: Mapped[dict[str, float]] = mapped_column(JsonDoc)
    tags: Mapped[dict[str, str]] = mapped_column(JsonDoc)


class RollupKeyRow(Base):
    """One combination of the dimensions spans are rolled up by; ``''`` where a span had none.

    Rollup rows refer to it by ``id`` so that the large rollup tables hold integers only.
    Rows are never deleted (there are few: one per distinct combination ever seen).
    """

    __tablename__ = "rollup_keys"
    __table_args__ = (
        UniqueConstraint("kind", "name", "model", "provider", "prompt_version", "branch"),
    )

    id: Mapped[int] = mapped_column(RowId, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(Text)
    model: Mapped[str] = mapped_column(Text)
    provider: Mapped[str] = mapped_column(Text)
    prompt_version: Mapped[str] = mapped_column(Text)
    branch: Mapped[str] = mapped_column(Text)


class RollupRow(Base):
    """Additive aggregates of the spans of one key in one minute (60) or hour (3600)."""

    __tablename__ = "rollups"
    # Clustered by (resolution, bucket_start, key_id) on SQLite: a window is one contiguous range.
    __table_args__ = {"sqlite_with_rowid": False}  # noqa: RUF012 - SQLAlchemy reads it once

    resolution: Mapped[int] = mapped_column(Integer, primary_key=True)
    bucket_start: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    key_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    count: Mapped[int] = mapped_column(BigInteger)
    errors: Mapped[int] = mapped_column(BigInteger)
    input_tokens: Mapped[int] = mapped_column(BigInteger)
    output_tokens: Mapped[int] = mapped_column(BigInteger)
    total_tokens: Mapped[int] = mapped_column(BigInteger)
    cache_read_tokens: Mapped[int] = mapped_column(BigInteger)
    cache_write_tokens: Mapped[int] = mapped_column(BigInteger)
    reasoning_tokens: Mapped[int] = mapped_column(BigInteger)
    cost_usd: Mapped[float] = mapped_column(Double)
    priced_count: Mapped[int] = mapped_column(BigInteger)
    latency_ms_sum: Mapped[float] = mapped_column(Double)
    ttft_ms_sum: Mapped[float] = mapped_column(Double)
    ttft_count: Mapped[int] = mapped_column(BigInteger)
    # Latency histogram: counts of bins hist_lo, hist_lo + 1, ... (see store/_histogram.py).
    hist_lo: Mapped[int] = mapped_column(Integer)
    hist: Mapped[Any] = mapped_column(HistArray)


class ApiKeyRow(Base):
    """One server API key: its public id, the SHA-256 of the whole key, name and scopes."""

    __tablename__ = "api_keys"

    key_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    secret_hash: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(Text)
    scopes: Mapped[str] = mapped_column(String(64))  # space-separated, sorted
    created_at: Mapped[float] = mapped_column(Double)
    revoked_at: Mapped[float | None] = mapped_column(Double)


class ModelRow(Base):
    """One model in the catalog; its prices (USD per token) override the built-in price table."""

    __tablename__ = "models"

    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    provider: Mapped[str | None] = mapped_column(Text)
    input_price_per_token: Mapped[float | None] = mapped_column(Double)
    output_price_per_token: Mapped[float | None] = mapped_column(Double)
    cache_read_price_per_token: Mapped[float | None] = mapped_column(Double)
    cache_write_price_per_token: Mapped[float | None] = mapped_column(Double)
    reasoning_price_per_token: Mapped[float | None] = mapped_column(Double)
    context_length: Mapped[int | None] = mapped_column(BigInteger)
    max_tokens: Mapped[int | None] = mapped_column(BigInteger)
    model_type: Mapped[str] = mapped_column(String(32))
    active: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[float] = mapped_column(Double)
    updated_at: Mapped[float] = mapped_column(Double)


# -- alerting (migration 0003) ---------------------------------------------------------------


class AlertRuleRow(Base):
    """An alert rule saved through the API or synced from a rules file (its document)."""

    __tablename__ = "alert_rules"

    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    spec: Mapped[dict[str, Any]] = mapped_column(JsonDoc)
    source: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[float] = mapped_column(Double)
    updated_at: Mapped[float] = mapped_column(Double)


class AlertSeriesRow(Base):
    """Evaluation state of one alert series (rule + labels): pending, firing or held."""

    __tablename__ = "alert_series"

    fingerprint: Mapped[str] = mapped_column(String(32), primary_key=True)
    rule: Mapped[str] = mapped_column(String(128), index=True)
    labels: Mapped[dict[str, str]] = mapped_column(JsonDoc)
    state: Mapped[str] = mapped_column(String(16))
    active_at: Mapped[float] = mapped_column(Double)
    last_true_at: Mapped[float] = mapped_column(Double)
    alert_id: Mapped[int | None] = mapped_column(BigInteger)


class AlertRow(Base):
    """One incident: a series firing from ``fired_at`` until ``resolved_at``."""

    __tablename__ = "alerts"
    __table_args__ = (Index(None, "state", "fired_at"), Index(None, "fired_at", "id"))

    id: Mapped[int] = mapped_column(RowId, primary_key=True, autoincrement=True)
    fingerprint: Mapped[str] = mapped_column(String(32), index=True)
    rule: Mapped[str] = mapped_column(String(128))
    severity: Mapped[str] = mapped_column(String(16))
    labels: Mapped[dict[str, str]] = mapped_column(JsonDoc)
    model: Mapped[str | None] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(16))
    summary: Mapped[str] = mapped_column(Text)
    value: Mapped[float | None] = mapped_column(Double)
    threshold: Mapped[float | None] = mapped_column(Double)
    baseline: Mapped[float | None] = mapped_column(Double)
    window_s: Mapped[float | None] = mapped_column(Double)
    evidence: Mapped[dict[str, Any]] = mapped_column(JsonDoc)
    started_at: Mapped[float] = mapped_column(Double)
    fired_at: Mapped[float] = mapped_column(Double)
    resolved_at: Mapped[float | None] = mapped_column(Double)
    resolved_by: Mapped[str | None] = mapped_column(Text)
    resolve_note: Mapped[str | None] = mapped_column(Text)
    acknowledged_at: Mapped[float | None] = mapped_column(Double)
    acknowledged_by: Mapped[str | None] = mapped_column(Text)
    ack_note: Mapped[str | None] = mapped_column(Text)
    notified_at: Mapped[float | None] = mapped_column(Double)
    escalation_level: Mapped[int] = mapped_column(Integer)
    channels: Mapped[list[str]] = mapped_column(JsonDoc)


class AlertEventRow(Base):
    """History of an incident: fired, notified, acknowledged, escalated, resolved."""

    __tablename__ = "alert_events"

    id: Mapped[int] = mapped_column(RowId, primary_key=True, autoincrement=True)
    alert_id: Mapped[int] = mapped_column(BigInteger, index=True)
    at: Mapped[float] = mapped_column(Double)
    kind: Mapped[str] = mapped_column(String(32))
    who: Mapped[str | None] = mapped_column(Text)
    note: Mapped[str | None] = mapped_column(Text)


class AlertSilenceRow(Base):
    """A silence: alerts matching every matcher send nothing between starts_at and ends_at."""

    __tablename__ = "alert_silences"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    matchers: Mapped[list[dict[str, str]]] = mapped_column(JsonDoc)
    starts_at: Mapped[float] = mapped_column(Double)
    ends_at: Mapped[float] = mapped_column(Double, index=True)
    created_by: Mapped[str] = mapped_column(Text)
    comment: Mapped[str] = mapped_column(Text)
    created_at: Mapped[float] = mapped_column(Double)


class AlertOutboxRow(Base):
    """One notification to deliver to one channel, written with the alert change it reports."""

    __tablename__ = "alert_outbox"
    __table_args__ = (
        Index(None, "status", "id"),
        Index(None, "status", "channel", "group_key", "id"),  # oldest pending per group (0006)
        Index(None, "channel", "group_key", "created_at"),  # last queued per group (0006)
    )

    id: Mapped[int] = mapped_column(RowId, primary_key=True, autoincrement=True)
    idempotency_key: Mapped[str] = mapped_column(String(64), unique=True)
    channel: Mapped[str] = mapped_column(String(128))
    group_key: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    payload: Mapped[dict[str, Any]] = mapped_column(JsonDoc)
    attempts: Mapped[int] = mapped_column(Integer)
    next_attempt_at: Mapped[float] = mapped_column(Double)
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[float | None] = mapped_column(Double)
    created_at: Mapped[float] = mapped_column(Double)
    delivered_at: Mapped[float | None] = mapped_column(Double)
    last_error: Mapped[str | None] = mapped_column(Text)


class AlertLeaseRow(Base):
    """Who holds a job (the alert evaluator) until when: one evaluator per shared database."""

    __tablename__ = "alert_leases"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    owner: Mapped[str] = mapped_column(String(64))
    expires_at: Mapped[float] = mapped_column(Double)
    #: When the holder last renewed it (evaluated): a successor's measure of the downtime (0006).
    renewed_at: Mapped[float | None] = mapped_column(Double)


class AlertGroupRow(Base):
    """What a channel was last told about one notification group (Alertmanager's notification
    log): when, and which alerts (fingerprints) it believes are firing (migration 0006)."""

    __tablename__ = "alert_groups"

    channel: Mapped[str] = mapped_column(String(128), primary_key=True)
    group_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    sent_at: Mapped[float] = mapped_column(Double)
    firing: Mapped[list[str]] = mapped_column(JsonDoc)
