"""Every ```yaml block in docs/*.md loads with the loader of what its page documents.

A user copies these into checks.yaml, prices.yaml, policy.yaml, a server config or a rules file;
a key renamed in the code must fail here, not in their file. Secrets the blocks name are given
stand-ins: each `*_env` variable is set, and each `*_file` path is swapped for a file made here
(a self-signed certificate for `ca_file`). A block that is another tool's file (Prometheus's
scrape configuration) is fenced ```yaml not-llmpulse and skipped.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
_BLOCK = re.compile(r"^```yaml[ \t]*(?P<flags>[^\n]*)\n(?P<text>.*?)^```", re.S | re.M)


def _checks(path: Path) -> Any:
    from llmpulse.checks import CheckConfig

    return CheckConfig.from_yaml(str(path))


def _prices(path: Path) -> Any:
    from llmpulse.pricing import load_price_file

    return load_price_file(path)


def _recovery(path: Path) -> Any:
    from llmpulse.recovery import RecoveryPolicy

    return RecoveryPolicy.from_yaml(path)


def _server(path: Path) -> Any:
    from llmpulse.server.settings import ServerSettings

    return ServerSettings.resolve(env={}, config_file=path)


def _rules(path: Path) -> Any:
    from llmpulse.alerting._load import load_rules

    return load_rules(path)


LOADERS: dict[str, Callable[[Path], Any]] = {
    "checks.md": _checks,
    "pricing.md": _prices,
    "recovery.md": _recovery,
    "server.md": _server,
    "alerting.md": _rules,
}

_ENV_VALUES = {
    "secret_env": "whsec_" + base64.b64encode(bytes(range(24))).decode(),
    "url_env": "https://hooks.slack.com/services/T000/B000/XXXX",
}
_FILE_TEXT = {"url_file": "https://discord.com/api/webhooks/1/token"}


def _blocks(page: Path) -> list[str]:
    text = page.read_text(encoding="utf-8")
    return [m["text"] for m in _BLOCK.finditer(text) if "not-llmpulse" not in m["flags"]]


def _with_stand_ins(text: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """The block with each named secret made available (env set, files created)."""
    for key, var in re.findall(r"^\s*(\w+_env):\s*(\w+)", text, re.M):
        monkeypatch.setenv(var, _ENV_VALUES.get(key, "stand-in"))

    def make_file(m: re.Match[str]) -> str:
        key = m[2]
        target = tmp_path / f"{key}-{m.start()}"
        if key == "ca_file":
            from tests.unit.alerting.channels.certs import self_signed

            folder = tmp_path / f"ca-{m.start()}"
            folder.mkdir()
            target = self_signed(folder, ["mail.example.com"])[0]
        else:
            target.write_text(_FILE_TEXT.get(key, "stand-in") + "\n", encoding="utf-8")
        return f"{m[1]}{target}"

    return re.sub(r"^(\s*(\w+_file):\s*)(\S+)", make_file, text, flags=re.M)


def test_every_page_with_yaml_has_a_loader() -> None:
    """A page that gains a yaml block must say here what reads it."""
    pages = {p.name for p in (ROOT / "docs").glob("*.md") if _blocks(p)}
    assert pages <= set(LOADERS), sorted(pages - set(LOADERS))


@pytest.mark.parametrize("page_name", sorted(LOADERS))
def test_yaml_blocks_load(page_name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each block of the page loads without an error."""
    blocks = _blocks(ROOT / "docs" / page_name)
    assert blocks, f"{page_name} has no yaml block any more: drop it from LOADERS"
    for i, text in enumerate(blocks):
        path = tmp_path / f"block{i}.yaml"
        path.write_text(_with_stand_ins(text, tmp_path, monkeypatch), encoding="utf-8")
        try:
            LOADERS[page_name](path)
        except Exception as exc:
            raise AssertionError(f"{page_name}, yaml block {i + 1}:\n{text}\n{exc}") from exc


def test_a_wrong_key_fails() -> None:
    """The loaders refuse what a stale doc would show (so the test above can fail)."""
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "checks.yaml"
        path.write_text("live:\n  no_such_setting: 3\n", encoding="utf-8")
        with pytest.raises(Exception, match="no_such_setting"):
            _checks(path)
