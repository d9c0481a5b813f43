"""init(): settings from arguments and environment, bad settings, disabled and missing init."""

from __future__ import annotations

import logging

import pytest

import llmpulse
from llmpulse.errors import ConfigError, PriceTableError
from llmpulse.sdk.exporters.store import StoreExporter
from llmpulse.testing import InMemoryExporter


class TestSettings:
    def test_arguments_override_environment(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """An argument beats its LLMPULSE_* variable, which beats the default."""
        monkeypatch.setenv("LLMPULSE_QUEUE_SIZE", "77")
        monkeypatch.setenv("LLMPULSE_BATCH_SIZE", "9")
        client = llmpulse.init(
            exporter=InMemoryExporter(), instrument=(), batch_size=5, service_name="api"
        )
        assert (client.config.queue_size, client.config.batch_size, client.config.service_name) == (
            77,
            5,
            "api",
        )

    def test_service_name_on_every_span(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """LLMPULSE_SERVICE_NAME is put on every span."""
        monkeypatch.setenv("LLMPULSE_SERVICE_NAME", "checkout")
        exporter = InMemoryExporter()
        llmpulse.init(exporter=exporter, instrument=())
        llmpulse.record_llm_call("gpt-4o")
        assert llmpulse.flush(10)
        assert exporter.spans[0].service == "checkout"

    def test_database_url_makes_a_store_exporter(self, sqlite_url: str) -> None:
        """Without an exporter, init writes to the database URL (opened lazily, not here)."""
        client = llmpulse.init(sqlite_url, instrument=())
        assert isinstance(client.exporter, StoreExporter)


class TestBadSettings:
    @pytest.mark.parametrize(
        ("kwargs", "message"),
        [
            ({"sample_rate": 1.5}, "sample_rate must be between 0.0 and 1.0"),
            ({"queue_size": 0}, "queue_size must be >= 1"),
            ({"flush_interval": "soon"}, "flush_interval must be a number"),
            ({"instrument": ("mistralai",)}, "unknown instrumentation"),
            ({"exporter": object()}, "exporter must have export(batch) and shutdown()"),
            ({"database_url": "mysql://db/x"}, "is not supported"),
            ({"database_url": "sqlite:///x.db", "exporter": InMemoryExporter()}, "not both"),
            ({"export_attempts": 0}, "export_attempts must be"),
        ],
    )
    def test_config_error_names_the_problem(self, kwargs: dict, message: str) -> None:
        """Each bad setting raises ConfigError from init with a message naming it."""
        kwargs.setdefault("instrument", ())
        with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
            llmpulse.init(**kwargs)

    def test_bad_environment_variable(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """A malformed LLMPULSE_* variable is named in the error."""
        monkeypatch.setenv("LLMPULSE_SAMPLE_RATE", "half")
        with pytest.raises(ConfigError, match="LLMPULSE_SAMPLE_RATE"):
            llmpulse.init(exporter=InMemoryExporter(), instrument=())

    def test_bad_prices(self) -> None:
        """A malformed price override is a PriceTableError (a ConfigError)."""
        with pytest.raises(PriceTableError, match="my-model"):
            llmpulse.init(
                exporter=InMemoryExporter(),
                instrument=(),
                prices={"my-model": {"input": -1, "output": 1}},
            )

    def test_failed_init_keeps_the_previous_client(self) -> None:
        """A bad second init raises and leaves the working client in place."""
        client = llmpulse.init(exporter=InMemoryExporter(), instrument=())
        with pytest.raises(ConfigError):
            llmpulse.init(exporter=InMemoryExporter(), instrument=(), sample_rate=-1)
        assert llmpulse.get_client() is client


class TestDisabledAndMissingInit:
    def test_enabled_false_records_nothing(self) -> None:
        """enabled=False gives a no-op client: spans are no-op handles, nothing is exported."""
        exporter = InMemoryExporter()
        client = llmpulse.init(exporter=exporter, instrument=(), enabled=False)
        with llmpulse.span("x") as s:
            s.set_attribute("a", 1)
        llmpulse.record_llm_call("gpt-4o")
        assert llmpulse.flush(1) and exporter.records == [] and not client.enabled
        assert s.is_recording is False

    def test_enabled_from_environment(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """LLMPULSE_ENABLED=false turns recording off."""
        monkeypatch.setenv("LLMPULSE_ENABLED", "false")
        assert llmpulse.init(instrument=()).enabled is False

    def test_without_init_one_warning_and_no_error(self, caplog: pytest.LogCaptureFixture) -> None:
        """Recording before init() is a no-op that warns once, and never raises."""
        from llmpulse.sdk import _batcher

        _batcher._uninit_warned = False
        with caplog.at_level(logging.WARNING, logger="llmpulse"):
            for _ in range(3):
                llmpulse.record_llm_call("gpt-4o")
                with llmpulse.span("s"):
                    pass
        assert caplog.text.count("Not initialised") == 1
        assert llmpulse.flush() is True and llmpulse.get_client().enabled is False


class TestModuleStats:
    def test_stats_are_the_active_clients(self) -> None:
        """llmpulse.stats() is the last init's accounting, without holding a client."""
        assert llmpulse.stats().recorded == 0  # no init: the disabled client
        first = InMemoryExporter()
        llmpulse.init(exporter=first, instrument=())
        with llmpulse.span("step", kind="chain"):
            llmpulse.record_llm_call("gpt-4o-mini", input_tokens=3, output_tokens=1)
        llmpulse.record_metric("loss", 0.5)
        assert llmpulse.flush(10)
        stats = llmpulse.stats()
        assert (stats.recorded, stats.exported, stats.dropped_total) == (3, 3, 0)
        assert len(first.records) == 3 and stats == llmpulse.get_client().stats()
        assert (stats.queue_depth, stats.in_flight, stats.spooled, stats.recovered) == (0, 0, 0, 0)

        llmpulse.init(exporter=InMemoryExporter(), instrument=())  # a new client starts at zero
        llmpulse.record_metric("loss", 0.25)
        assert llmpulse.flush(10) and llmpulse.stats().recorded == 1
