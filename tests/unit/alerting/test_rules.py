"""Rules: parsing with errors that name file, line and field; measuring them over a real store."""

from __future__ import annotations

import dataclasses
import textwrap

import pytest
import yaml

from llmpulse.alerting import (
    EvalContext,
    Rule,
    Sample,
    default_rules_text,
    load_rules,
    parse_rule,
    parse_rule_set,
)
from llmpulse.alerting._query import measure
from llmpulse.errors import ConfigError

from .conftest import llm, point

NOW = 1_800_000_000.0  # a whole hour


def _write(tmp_path, text: str):
    path = tmp_path / "rules.yaml"
    path.write_text(textwrap.dedent(text))
    return path


class TestRuleFiles:
    def test_default_rules_file_is_valid_and_complete(self) -> None:
        """The shipped defaults load and cover the rules the issue asks for."""
        rules = parse_rule_set(yaml.safe_load(default_rules_text())).rules
        names = {r.name for r in rules}
        assert {"high_latency", "high_error_rate", "token_quota", "cost_spike", "no_traffic",
                "breaker_open", "system_cpu", "system_memory", "system_disk"} <= names  # fmt: skip
        latency = next(r for r in rules if r.name == "high_latency")
        assert (latency.warning, latency.critical, latency.for_s) == (2000, 5000, 300)

    def test_bad_value_names_file_line_and_field(self, tmp_path) -> None:
        """A wrong type is reported at its file, line and dotted field."""
        path = _write(tmp_path, """\
            rules:
              - name: slow
                metric: latency_p95_ms
                warning: high
            """)  # fmt: skip
        with pytest.raises(ConfigError) as exc:
            load_rules(path)
        assert str(exc.value) == (f"{path} line 4: rules[0].warning: must be a number, got 'high'")

    @pytest.mark.parametrize(
        ("body", "field", "words"),
        [
            ("metric: latency_p95\n    warning: 1", "rules[0].metric", "did you mean 'latency_p95_ms'"),
            ("metric: error_rate\n    warnin: 1", "rules[0].warnin", "did you mean 'warning'"),
            ("metric: error_rate\n    warning: 1\n    for: soon", "rules[0].for", "not a duration"),
            ("metric: error_rate", "rules[0]", "needs 'warning', 'critical'"),
            ("metric: error_rate\n    warning: 0.2\n    critical: 0.1", "rules[0].critical", "beyond warning"),
            ("metric: token_quota\n    warning: 0.8", "rules[0].quota", "token budget"),
            ("metric: error_rate\n    warning: 1\n    channels: [pager]", "rules[0].channels[0]", "unknown channel 'pager'"),
            ("metric: error_rate\n    warning: 1\n    by: [host]", "rules[0].by[0]", "cannot split by it"),
            ("metric: error_rate\n    warning: 1\n    summary: '{modle} bad'", "rules[0].summary", "uses {modle}"),
            ("type: detection\n    checks: [cost_spik]", "rules[0].checks[0]", "must be one of"),
        ],
    )  # fmt: skip
    def test_each_mistake_is_named(self, tmp_path, body: str, field: str, words: str) -> None:
        """Every kind of mistake names its field and says what is wrong."""
        path = _write(tmp_path, "rules:\n  - name: r\n    " + body + "\n")
        with pytest.raises(ConfigError) as exc:
            load_rules(path)
        assert f": {field}: " in str(exc.value)
        assert words in str(exc.value)
        assert str(path) in str(exc.value) and " line " in str(exc.value)

    def test_duplicate_names_are_refused(self, tmp_path) -> None:
        """Two rules with one name would share alerts: refused at load."""
        path = _write(tmp_path, """\
            rules:
              - {name: a, metric: errors, warning: 1}
              - {name: a, metric: errors, warning: 2}
            """)  # fmt: skip
        with pytest.raises(ConfigError, match=r"line 3: rules\[1\]\.name: 'a' is defined twice"):
            load_rules(path)

    def test_bad_channel_url_is_refused_at_load(self, tmp_path) -> None:
        """A webhook to a private address is rejected when the file is loaded, not when it fires."""
        path = _write(tmp_path, """\
            channels:
              hook: {type: webhook, url: "http://169.254.169.254/latest"}
            rules:
              - {name: a, metric: errors, warning: 1, channels: [hook]}
            """)  # fmt: skip
        with pytest.raises(ConfigError) as exc:
            load_rules(path)
        assert "line 2" in str(exc.value) and "channels.hook" in str(exc.value)

    def test_spec_round_trips(self) -> None:
        """A rule's stored document parses back to the same rule."""
        rule = parse_rule(
            {"name": "q", "metric": "token_quota", "quota": 1e6, "warning": 0.8, "critical": 0.95,
             "by": ["model"], "filters": {"model": ["a", "b"]}, "for": "2m", "window": "1d",
             "escalation": [{"after": "15m", "channels": ["x"]}]},
        )  # fmt: skip
        assert parse_rule(rule.to_spec()) == rule
        assert rule.filters == {"model": ("a", "b"), "kind": ("llm",)}


class TestMeasure:
    def test_threshold_over_rollups_per_model(self, store) -> None:
        """p95 latency per model: each model crossing gets samples for every severity crossed."""
        spans = [llm(NOW - 100 + i, model="slow", latency_ms=6000) for i in range(20)]
        spans += [llm(NOW - 100 + i, model="mid", latency_ms=3000) for i in range(20)]
        spans += [llm(NOW - 100 + i, model="fast", latency_ms=50) for i in range(20)]
        spans += [llm(NOW - 900, model="fast", latency_ms=9000)]  # outside the 5 min window
        store.write(spans=spans)
        rule = Rule("lat", metric="latency_p95_ms", by=("model",), warning=2000, critical=5000,
                    filters={"kind": ("llm",)})  # fmt: skip
        got = {(s.labels["model"], s.severity) for s in measure(rule, EvalContext(store, NOW))}
        assert got == {("slow", "critical"), ("slow", "warning"), ("mid", "warning")}

    def test_window_rollups_equal_span_stats(self, store) -> None:
        """The engine's one-scan aggregation answers what span_stats answers."""
        store.write(spans=[llm(NOW - 7000 + 37 * i, model=f"m{i % 3}", latency_ms=10 + i,
                               error=i % 7 == 0) for i in range(180)])  # fmt: skip
        window = store.window_rollups(NOW - 7200, NOW)
        for group_by, filters in [
            ((), {}),
            (("model",), {}),
            (("model",), {"model": ["m1", "m2"]}),
        ]:
            got = window.stats(group_by, filters)
            want = store.span_stats(NOW - 7200, NOW, group_by=group_by, **filters)

            # sums are added per key first, then per group: equal up to float rounding
            def numbers(s):
                return {k: v for k, v in dataclasses.asdict(s).items() if k != "group"}

            assert [numbers(g) for g in got] == [pytest.approx(numbers(w)) for w in want]
            assert [g.p95_latency_ms for g in got] == [w.p95_latency_ms for w in want]
            assert [g.group for g in got] == [w.group for w in want]

    def test_error_rate_respects_min_requests(self, store) -> None:
        """Two failures out of three calls is not an error-rate incident under min_requests=10."""
        store.write(spans=[llm(NOW - 10, error=True), llm(NOW - 9, error=True), llm(NOW - 8)])
        rule = parse_rule(
            {"name": "e", "metric": "error_rate", "warning": 0.05, "min_requests": 10}
        )
        assert measure(rule, EvalContext(store, NOW)) == []
        rule = parse_rule({"name": "e", "metric": "error_rate", "warning": 0.05})
        assert [s.value for s in measure(rule, EvalContext(store, NOW))] == [pytest.approx(2 / 3)]

    def test_absence(self, store) -> None:
        """No calls of a model in the window fires; one call clears it."""
        rule = parse_rule({"name": "quiet", "type": "absence", "filters": {"model": "gpt-4o"},
                           "window": "15m"})  # fmt: skip
        [sample] = measure(rule, EvalContext(store, NOW))
        assert sample.labels == {"model": "gpt-4o"}
        assert sample.severity == "critical"
        store.write(spans=[llm(NOW - 60, model="gpt-4o")])
        assert measure(rule, EvalContext(store, NOW)) == []

    def test_counter_increase_and_restart(self, store) -> None:
        """Retries count the rise of each process's counter, through a restart, not its total."""
        name = "llmpulse_recovery_retries_total"
        store.write(points=[
            point(name, 40, NOW - 900, model="a", instance="h:1"),   # before the window
            point(name, 43, NOW - 200, model="a", instance="h:1"),   # +3
            point(name, 2, NOW - 100, model="a", instance="h:2"),    # new process: +2
            point(name, 1, NOW - 50, model="a", instance="h:1"),     # restart: +1
        ])  # fmt: skip
        rule = parse_rule({"name": "r", "metric": "retries", "by": ["model"], "warning": 5})
        [sample] = measure(rule, EvalContext(store, NOW))
        assert (sample.labels, sample.value) == ({"model": "a"}, 6.0)

    def test_breaker_open_holds_until_it_closes(self, store) -> None:
        """A breaker opened before the window is still open; one that closed is not."""
        name = "llmpulse_circuit_state"
        store.write(points=[point(name, 2, NOW - 3600, model="a"),
                            point(name, 2, NOW - 3600, model="b"),
                            point(name, 0, NOW - 30, model="b")])  # fmt: skip
        rule = parse_rule({"name": "b", "metric": "breaker_open", "by": ["model"],
                           "condition": ">=", "critical": 1})  # fmt: skip
        assert [s.labels for s in measure(rule, EvalContext(store, NOW))] == [{"model": "a"}]

    def test_system_metric_point_rule(self, store) -> None:
        """A system rule reads any named metric with its aggregation and label filters."""
        store.write(points=[point("system_cpu_percent", v, NOW - 200 + i, host="h1")
                            for i, v in enumerate((90, 99, 96))])  # fmt: skip
        rule = parse_rule({"name": "cpu", "metric": "point", "by": ["host"], "warning": 85,
                           "critical": 95, "point": {"name": "system_cpu_percent",
                                                      "aggregate": "avg"}})  # fmt: skip
        samples = measure(rule, EvalContext(store, NOW))
        assert {s.severity for s in samples} == {"warning"}
        assert samples[0].value == pytest.approx(95.0)

    def test_python_condition(self, store) -> None:
        """In embedded use a callable decides; it reads the same cached rollups."""
        store.write(spans=[llm(NOW - 30, tokens=5000)])

        def too_many_tokens(ctx: EvalContext) -> list[Sample]:
            return [Sample({"model": r.group["model"] or ""}, r.total_tokens)
                    for r in ctx.stats(300, ("model",)) if r.total_tokens > 1000]  # fmt: skip

        rule = Rule("tokens", type="callable", condition=too_many_tokens, severity="critical")
        [sample] = measure(rule, EvalContext(store, NOW))
        assert (sample.labels, sample.value, sample.severity) == (
            {"model": "gpt-4o"},
            5000,
            "critical",
        )
        assert (
            measure(
                Rule("b", type="callable", condition=lambda ctx: False), EvalContext(store, NOW)
            )
            == []
        )
