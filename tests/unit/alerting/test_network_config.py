"""Where users allow internal receivers: the rules file's ``network.allow``, the server setting
(``LLMPULSE_ALERT_ALLOW_NETWORK``, the config file, ``--alert-allow-network``) and the ``alerts``
commands' ``--allow-network``; checked when the rules are loaded and again at every send."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from llmpulse.alerting import AlertEngine, DeliveryWorker, Rule, Sample, load_rules
from llmpulse.alerting.channels import NetworkPolicy
from llmpulse.cli.main import app
from llmpulse.errors import ConfigError
from llmpulse.server.settings import ServerSettings

from .hook import hook


def _write(tmp_path: Path, text: str, name: str = "rules.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def _loopback_rules(tmp_path: Path, url: str, network: str = "") -> Path:
    return _write(tmp_path, f"""\
        {network}
        channels:
          hook: {{type: webhook, url: "{url}"}}
        rules:
          - {{name: a, metric: errors, warning: 1, channels: [hook]}}
        """)  # fmt: skip


class TestRulesFile:
    def test_network_allow_admits_a_local_receiver_on_load_and_on_send(
        self, tmp_path: Path, sqlite_store
    ) -> None:
        """`network: {allow: [127.0.0.1]}` lets the file's webhook reach a real local receiver;
        the same file without it is refused at load, naming the channel's url."""
        with hook() as h:
            refused = _loopback_rules(tmp_path, h.url)
            with pytest.raises(ConfigError) as info:
                load_rules(refused)
            assert f"{refused} line 3: channels.hook.url" in str(info.value)
            assert "loopback" in str(info.value)

            allowed = _loopback_rules(tmp_path, h.url, "network: {allow: [127.0.0.1]}")
            rule_set = load_rules(allowed)
            assert rule_set.network is not None
            assert rule_set.network.describe() == {"allow": ["127.0.0.1/32"]}
            fire = Rule("up", type="callable", condition=lambda ctx: [Sample({}, 1.0)],
                        channels=("hook",))  # fmt: skip
            engine = AlertEngine(sqlite_store, rule_set, rules=[fire], owner="n1")
            engine.tick()
            worker = DeliveryWorker(sqlite_store, rule_set.channels, owner="n1")
            assert worker.run_once().delivered == 1
            assert [p["alerts"][0]["rule"] for p in h.ok_payloads()] == ["up"]

    def test_file_entries_add_to_the_callers_policy(self, tmp_path: Path) -> None:
        """The server's allow-list and the file's are both in force (neither replaces the other)."""
        path = _loopback_rules(tmp_path, "http://10.1.2.3/h", "network: {allow: [10.0.0.0/8]}")
        got = load_rules(path, policy=NetworkPolicy(["192.168.0.0/16"]))
        assert got.network is not None
        assert got.network.describe() == {"allow": ["192.168.0.0/16", "10.0.0.0/8"]}

    @pytest.mark.parametrize(
        ("network", "where"),
        [
            ("network: {allow: [127.0.0.1, 'bad host!']}", "line 1: network.allow[1]: 'bad host!' is not a valid hostname"),
            ("network: {allow: [10.0.0.0/33]}", "line 1: network.allow[0]: '10.0.0.0/33' is not a valid address or CIDR"),
            ("network: {allow: 127.0.0.1}", "line 1: network.allow: must be a list"),
            ("network: {deny: [127.0.0.1]}", "line 1: network.deny: unknown field (only allow)"),
            ("network: [127.0.0.1]", "line 1: network: must be a mapping"),
            ("networks: {allow: []}", "line 1: networks: is not a section (rules, channels, inhibit_rules, network)"),
        ],
    )  # fmt: skip
    def test_bad_network_section_names_file_line_and_field(
        self, tmp_path: Path, network: str, where: str
    ) -> None:
        """Each mistake in the network section is reported at its file, line and field."""
        path = _write(tmp_path, f"{network}\nrules: []\n")
        with pytest.raises(ConfigError) as info:
            load_rules(path)
        assert str(info.value).startswith(str(path)), info.value
        assert where in str(info.value)


class TestServerSetting:
    def test_env_file_and_flag_forms(self, tmp_path: Path) -> None:
        """Comma-separated in the environment, a YAML list in the file, a list of flags; the
        flag wins over the environment, which wins over the file (like every setting)."""
        path = _write(tmp_path, "server:\n  alert_allow_network: [10.0.0.0/8, am.internal]\n",
                      "s.yaml")  # fmt: skip
        from_file = ServerSettings.resolve({}, config_file=path)
        assert from_file.alert_network_allow == ["10.0.0.0/8", "am.internal"]
        env = {"LLMPULSE_ALERT_ALLOW_NETWORK": "127.0.0.1, *.corp.example"}
        assert ServerSettings.resolve(env, config_file=path).alert_network_allow == [
            "127.0.0.1", "*.corp.example",
        ]  # fmt: skip
        flags = ServerSettings.resolve(env, alert_allow_network=["::1", "192.168.0.0/16"])
        assert flags.alert_network_allow == ["::1", "192.168.0.0/16"]
        assert ServerSettings.from_json(flags.to_json()) == flags  # reaches every worker

    def test_bad_entries_name_where_they_came_from(self, tmp_path: Path) -> None:
        """A bad entry is refused when the settings are read, naming the variable, the flag, or
        the file's line and the entry."""
        with pytest.raises(ConfigError, match="LLMPULSE_ALERT_ALLOW_NETWORK 'x y' is not a valid"):
            ServerSettings.resolve({"LLMPULSE_ALERT_ALLOW_NETWORK": "127.0.0.1,x y"})
        with pytest.raises(
            ConfigError, match=r"--alert-allow-network '10\.0\.0\.0/40' is not a valid"
        ):
            ServerSettings.resolve({}, alert_allow_network=["10.0.0.0/40"])
        path = _write(tmp_path, "alert_allow_network:\n  - 127.0.0.1\n  - 'no such!'\n", "s.yaml")
        with pytest.raises(ConfigError) as info:
            ServerSettings.resolve({}, config_file=path)
        assert str(info.value) == (
            f"{path} line 3: alert_allow_network[1]: 'no such!' is not a valid hostname"
        )

    def test_serve_refuses_a_bad_flag_before_starting(self, tmp_path: Path) -> None:
        """`llmpulse serve --alert-allow-network` with a bad entry exits 2 naming the flag."""
        result = CliRunner().invoke(app, [
            "serve", "--database-url", f"sqlite:///{tmp_path / 'x.db'}",
            "--alert-allow-network", "127.0.0.1", "--alert-allow-network", "bad/host",
        ])  # fmt: skip
        assert result.exit_code == 2
        assert "--alert-allow-network 'bad/host' is not a valid address or CIDR" in result.output


class TestAlertsCommands:
    def test_validate_reads_flag_then_environment(self, tmp_path: Path, monkeypatch) -> None:
        """`alerts validate` admits a loopback receiver through --allow-network or, without the
        flag, LLMPULSE_ALERT_ALLOW_NETWORK (as the server does); a bad entry names its source."""
        path = _loopback_rules(tmp_path, "http://127.0.0.1:9/h")
        run = CliRunner().invoke
        refused = run(app, ["alerts", "validate", str(path)])
        assert refused.exit_code == 2 and "channels.hook.url" in refused.output
        flag = run(app, ["alerts", "validate", str(path), "--allow-network", "127.0.0.0/8"])
        assert flag.exit_code == 0 and "channels may reach 127.0.0.0/8" in flag.output
        monkeypatch.setenv("LLMPULSE_ALERT_ALLOW_NETWORK", "127.0.0.1")
        assert run(app, ["alerts", "validate", str(path)]).exit_code == 0
        monkeypatch.setenv("LLMPULSE_ALERT_ALLOW_NETWORK", "127.0.0.1,not valid")
        bad = run(app, ["alerts", "validate", str(path)])
        assert bad.exit_code == 2
        assert "LLMPULSE_ALERT_ALLOW_NETWORK: 'not valid' is not a valid hostname" in bad.output
