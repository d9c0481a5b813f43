"""``llmpulse alerts``: validate names file/line/field, and the state commands over a real store."""

from __future__ import annotations

import json
import textwrap

from typer.testing import CliRunner

from llmpulse.alerting import AlertEngine, Rule, RuleSet, Sample
from llmpulse.cli.main import app
from llmpulse.store import Store


def _run(*args: str):
    return CliRunner().invoke(app, list(args))


class TestValidate:
    def test_good_file(self, tmp_path) -> None:
        """A valid file reports what it holds."""
        path = tmp_path / "r.yaml"
        path.write_text("rules:\n  - {name: a, metric: errors, warning: 1}\n")
        result = _run("alerts", "validate", str(path))
        assert result.exit_code == 0 and "ok, 1 rules" in result.output

    def test_bad_file_exit_2_with_line(self, tmp_path) -> None:
        """A mistake exits 2 with one line naming the file, line and field."""
        path = tmp_path / "r.yaml"
        path.write_text(textwrap.dedent("""\
            rules:
              - name: a
                metric: errors
                for: later
                warning: 1
            """))  # fmt: skip
        result = _run("alerts", "validate", str(path))
        assert result.exit_code == 2
        assert f"{path} line 4: rules[0].for: 'later' is not a duration" in result.output

    def test_defaults_print_and_validate(self, tmp_path) -> None:
        """`alerts rules --defaults` prints the shipped file, which validates."""
        text = _run("alerts", "rules", "--defaults").output
        path = tmp_path / "defaults.yaml"
        path.write_text(text)
        assert "ok, 9 rules" in _run("alerts", "validate", str(path)).output


class TestStateCommands:
    def test_list_ack_resolve_silence(self, sqlite_url) -> None:
        """An alert fired by the engine is listed, acknowledged and resolved from the shell."""
        with Store.open(sqlite_url) as store:
            rule = Rule("lat", type="callable", condition=lambda ctx: [Sample({"model": "a"}, 9.0)])
            AlertEngine(store, RuleSet(), rules=[rule], owner="t").tick()
            [alert] = store.alert_page(filters={})
        db = ["--database-url", sqlite_url]
        listed = _run("alerts", "list", "--json", *db)
        assert json.loads(listed.output.splitlines()[0])["rule"] == "lat"
        assert _run("alerts", "ack", str(alert.id), "--who", "ana", *db).exit_code == 0
        assert "acked" in _run("alerts", "list", *db).output
        again = _run("alerts", "ack", str(alert.id), "--who", "ana", *db)
        assert again.exit_code == 1 and "nothing to do" in again.output
        assert (
            _run("alerts", "resolve", str(alert.id), "--who", "ana", "--note", "ok", *db).exit_code
            == 0
        )
        assert _run("alerts", "list", "--active", *db).output == ""
        made = _run(
            "alerts", "silence", "--match", "model=~gpt-.*", "--who", "ana", "--duration", "2h", *db
        )
        assert made.exit_code == 0, made.output
        silence_id = made.output.split()[1]
        assert silence_id in _run("alerts", "silence", "--list", *db).output
        assert _run("alerts", "silence", "--expire", silence_id, *db).exit_code == 0
        everything = _run("alerts", "silence", "--match", "foo=~.*", "--who", "x", *db)
        assert everything.exit_code == 2 and "every alert" in everything.output

    def test_run_once(self, sqlite_url, tmp_path) -> None:
        """`alerts run --once` evaluates the rules file and reports JSON."""
        path = tmp_path / "r.yaml"
        path.write_text("rules:\n  - {name: quiet, type: absence, window: 5m}\n")
        result = _run("alerts", "run", "--once", "--rules", str(path), "--database-url", sqlite_url)
        assert result.exit_code == 0, result.output
        assert json.loads(result.output)["firing"] == 1
