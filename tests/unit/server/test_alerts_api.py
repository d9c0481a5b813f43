"""``/api/v1/alerts``: listing with filters and cursors, acknowledge/resolve, statistics, rules
CRUD refused on save when wrong, silences (UTC, no match-all), channels masked."""

from __future__ import annotations

import textwrap

import pytest

from llmpulse.alerting import AlertEngine, Rule, RuleSet, Sample
from llmpulse.alerting.channels import FunctionChannel

T0 = 1_800_000_000.0
SECRET_URL = "http://127.0.0.1:9/hooks/T000/very-secret-token"


@pytest.fixture
def rules_file(tmp_path):
    path = tmp_path / "rules.yaml"
    path.write_text(textwrap.dedent(f"""\
        channels:
          ops: {{type: webhook, url: "{SECRET_URL}"}}
        rules:
          - {{name: from_file, metric: errors, warning: 100, channels: [ops]}}
        """))  # fmt: skip
    return str(path)


@pytest.fixture
def api(store, make_client, rules_file):
    return make_client(store, alert_rules=rules_file, alert_interval=0,
                       alert_allow_network="127.0.0.1")  # fmt: skip


def _fire(store, *samples: Sample, at: float = T0) -> None:
    """Incidents made by a real engine over the same store."""
    rule = Rule("lat", type="callable", condition=lambda ctx: list(samples), channels=("ops",))
    rs = RuleSet(channels={"ops": FunctionChannel("ops", lambda n: None)})
    AlertEngine(store, rs, rules=[rule], clock=lambda: at, owner="t").tick()


class TestAlerts:
    def test_list_filters_and_pages(self, api, store) -> None:
        """Filters by model, severity, state; a cursor walks every page once."""
        _fire(store, *[Sample({"model": f"m{i}"}, 1.0, "critical" if i % 2 else "warning")
                       for i in range(5)])  # fmt: skip
        r = api.get("/api/v1/alerts", params={"severity": "critical"})
        assert r.status_code == 200
        assert sorted(a["labels"]["model"] for a in r.json()["items"]) == ["m1", "m3"]
        assert [
            a["labels"]["model"]
            for a in api.get("/api/v1/alerts", params={"model": "m4"}).json()["items"]
        ] == ["m4"]
        seen, cursor = [], None
        while True:
            page = api.get(
                "/api/v1/alerts", params={"limit": 2, **({"cursor": cursor} if cursor else {})}
            ).json()
            seen += [a["id"] for a in page["items"]]
            cursor = page["next_cursor"]
            if not cursor:
                break
        assert len(seen) == len(set(seen)) == 5
        assert api.get("/api/v1/alerts", params={"start": T0 + 1}).json()["items"] == []
        assert api.get("/api/v1/alerts", params={"state": "bogus"}).status_code == 422

    def test_acknowledge_and_resolve_with_who_and_note(self, api, store) -> None:
        """PUT acknowledges then resolves; the history says who and why; a second resolve is 409."""
        _fire(store, Sample({"model": "a"}, 1.0, "warning"))
        [alert] = api.get("/api/v1/alerts").json()["items"]
        r = api.put(
            f"/api/v1/alerts/{alert['id']}",
            json={"action": "acknowledge", "who": "ana", "note": "on it"},
        )
        assert (r.status_code, r.json()["state"], r.json()["acknowledged_by"]) == (
            200,
            "acknowledged",
            "ana",
        )
        r = api.put(
            f"/api/v1/alerts/{alert['id']}",
            json={"action": "resolve", "who": "bo", "note": "rolled back"},
        )
        assert (r.json()["state"], r.json()["resolved_by"], r.json()["resolve_note"]) == (
            "resolved",
            "bo",
            "rolled back",
        )
        again = api.put(
            f"/api/v1/alerts/{alert['id']}", json={"action": "acknowledge", "who": "late"}
        )
        assert (
            again.status_code == 409 and again.headers["content-type"] == "application/problem+json"
        )
        detail = api.get(f"/api/v1/alerts/{alert['id']}").json()
        assert [(h["kind"], h["who"]) for h in detail["history"]][-2:] == [
            ("acknowledged", "ana"),
            ("resolved", "bo"),
        ]
        assert api.get("/api/v1/alerts", params={"active_only": True}).json()["items"] == []
        assert (
            api.put("/api/v1/alerts/999999", json={"action": "resolve", "who": "x"}).status_code
            == 404
        )
        assert (
            api.put(
                f"/api/v1/alerts/{alert['id']}", json={"action": "snooze", "who": "x"}
            ).status_code
            == 422
        )

    def test_statistics(self, api, store) -> None:
        """Counts by severity and rule over days_back."""
        import time

        _fire(store, Sample({"model": "a"}, 1.0, "critical"), at=time.time() - 3600)
        stats = api.get("/api/v1/alerts/statistics", params={"days_back": 1}).json()
        assert (stats["total"], stats["by_severity"], stats["by_rule"]) == (
            1,
            {"critical": 1},
            {"lat": 1},
        )
        assert api.get("/api/v1/alerts/statistics", params={"days_back": 0}).status_code == 422


class TestRules:
    def test_crud(self, api) -> None:
        """Create, read, replace and delete a rule saved through the API."""
        spec = {"name": "api_rule", "metric": "error_rate", "warning": 0.05, "channels": ["ops"]}
        r = api.post("/api/v1/alerts/rules", json=spec)
        assert r.status_code == 201 and r.json()["source"] == "api"
        assert api.post("/api/v1/alerts/rules", json=spec).status_code == 409
        names = {x["name"]: x["source"] for x in api.get("/api/v1/alerts/rules").json()}
        assert names == {"from_file": "file", "api_rule": "api"}
        r = api.put("/api/v1/alerts/rules/api_rule", json={**spec, "warning": 0.2})
        assert r.json()["spec"]["warning"] == 0.2
        assert api.delete("/api/v1/alerts/rules/api_rule").status_code == 204
        assert api.get("/api/v1/alerts/rules/api_rule").status_code == 404
        assert api.delete("/api/v1/alerts/rules/from_file").status_code == 409

    @pytest.mark.parametrize(
        ("spec", "field"),
        [
            ({"name": "x", "metric": "errors", "warning": 1, "channels": ["pager"]}, "rule.channels[0]"),
            ({"name": "x", "metric": "errors", "warning": "high"}, "rule.warning"),
            ({"name": "x", "metric": "errors"}, "rule"),
            ({"name": "x", "metric": "errors", "warning": 1, "summary": "{nope}"}, "rule.summary"),
        ],
    )  # fmt: skip
    def test_bad_rule_is_refused_on_save(self, api, spec, field) -> None:
        """A rule naming an unknown channel or a bad field is a 422 naming it, not stored."""
        r = api.post("/api/v1/alerts/rules", json=spec)
        assert r.status_code == 422 and r.json()["field"] == field, r.json()
        assert "x" not in {x["name"] for x in api.get("/api/v1/alerts/rules").json()}

    def test_channels_are_masked(self, api) -> None:
        """The webhook URL (its token) never appears in the API."""
        r = api.get("/api/v1/alerts/channels")
        assert r.status_code == 200 and r.json()[0]["name"] == "ops"
        assert "very-secret-token" not in r.text


class TestChannelTest:
    def test_delivers_to_a_real_receiver(self, store, make_client, tmp_path) -> None:
        """POST /channels/{name}/test sends one notification to the receiver at once."""
        from tests.unit.alerting.hook import hook

        with hook() as h:
            path = tmp_path / "r.yaml"
            path.write_text(f"network: {{allow: [127.0.0.1]}}\n"
                            f"channels:\n  team: {{type: webhook, url: '{h.url}'}}\n")  # fmt: skip
            api = make_client(store, alert_rules=str(path), alert_interval=0)
            r = api.post("/api/v1/alerts/channels/team/test", json={"who": "ana"})
            assert r.status_code == 200, r.json()
            assert r.json()["delivered"] is True
            [body] = h.ok_payloads()
        assert body["alerts"][0]["rule"] == "llmpulse_test"
        assert "ana" in body["alerts"][0]["summary"]

    def test_failures_are_502_without_the_url(self, api) -> None:
        """Nothing listening: a 502 saying so (retryable), never the URL's token; an unknown
        channel is a 404 listing the configured ones."""
        r = api.post("/api/v1/alerts/channels/ops/test", json={"who": "ana"})
        assert r.status_code == 502 and r.json()["retryable"] is True
        assert "very-secret-token" not in r.text and "/hooks/" not in r.text
        missing = api.post("/api/v1/alerts/channels/nope/test", json={"who": "ana"})
        assert missing.status_code == 404 and "ops" in missing.json()["detail"]
        assert api.post("/api/v1/alerts/channels/ops/test", json={}).status_code == 422

    def test_same_guard_as_every_send(self, api) -> None:
        """A name public when the channel was built and internal now is refused by the test
        endpoint too (Grafana GF#123581: the receiver-test endpoint skipped the guard)."""
        import dataclasses

        from llmpulse.alerting.channels import NetworkPolicy, build_channel

        answers = {"hooks.example.com": ["93.184.216.34"]}
        policy = NetworkPolicy(resolver=lambda host, port: answers[host])
        hook = build_channel("rebind", {"type": "webhook", "url": "http://hooks.example.com/x"},
                             allow=policy)  # fmt: skip
        engine = api.app.state.llmpulse.alerts
        engine.rule_set = dataclasses.replace(engine.rule_set, channels={"rebind": hook})
        answers["hooks.example.com"] = ["127.0.0.1"]  # DNS rebinding after the save
        r = api.post("/api/v1/alerts/channels/rebind/test", json={"who": "ana"})
        assert r.status_code == 502 and r.json()["retryable"] is False
        assert "resolves to 127.0.0.1, which is blocked: loopback" in r.json()["detail"]


class TestSilences:
    def test_offset_times_come_back_in_utc(self, api) -> None:
        """A silence given with +03:00 is stored and returned as UTC with Z (IncidentRelay#37)."""
        r = api.post("/api/v1/alerts/silences", json={
            "matchers": [{"name": "model", "value": "gpt-4o"}], "created_by": "ana",
            "starts_at": "2030-01-01T12:00:00+03:00", "ends_at": "2030-01-01T15:00:00+03:00"})  # fmt: skip
        assert r.status_code == 201, r.json()
        body = r.json()
        assert (body["starts_at"], body["ends_at"], body["state"]) == (
            "2030-01-01T09:00:00.000000Z",
            "2030-01-01T12:00:00.000000Z",
            "pending",
        )
        listed = api.get("/api/v1/alerts/silences").json()
        assert [s["id"] for s in listed] == [body["id"]]
        expired = api.delete(f"/api/v1/alerts/silences/{body['id']}").json()
        assert expired["state"] == "expired"
        assert api.get("/api/v1/alerts/silences").json() == []

    @pytest.mark.parametrize(
        ("body", "words"),
        [
            ({"matchers": [{"name": "foo", "op": "=~", "value": ".*"}], "ends_at": "2099-01-01T00:00:00Z"}, "every alert"),
            ({"matchers": [{"name": "model", "value": "a"}], "ends_at": "2001-01-01T00:00:00Z"}, "in the past"),
            ({"matchers": [{"name": "model", "op": "=~", "value": "("}], "ends_at": "2099-01-01T00:00:00Z"}, "regular expression"),
        ],
    )  # fmt: skip
    def test_bad_silences_are_refused(self, api, body, words) -> None:
        """A match-all silence, an end in the past or a broken regex is a 422."""
        r = api.post("/api/v1/alerts/silences", json={"created_by": "x", **body})
        assert r.status_code == 422 and words in r.json()["detail"]


class TestServerRunsTheEngine:
    def test_lifespan_evaluates_api_rules(self, store, make_client) -> None:
        """With an interval, the served app's engine evaluates stored rules in the background."""
        import time

        from llmpulse.schema import MetricPoint

        store.write(
            points=[MetricPoint("system_disk_percent", 97.0, time.time() - 5, {"host": "h"})]
        )
        api = make_client(store, alert_interval=1)
        spec = {"name": "disk", "metric": "point", "point": {"name": "system_disk_percent",
                "aggregate": "max"}, "by": ["host"], "critical": 90}  # fmt: skip
        assert api.post("/api/v1/alerts/rules", json=spec).status_code == 201
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            items = api.get("/api/v1/alerts").json()["items"]
            if items:
                break
            time.sleep(0.2)
        assert [(a["rule"], a["labels"]["host"], a["state"]) for a in items] == [
            ("disk", "h", "firing")
        ]
