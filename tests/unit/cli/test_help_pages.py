"""Every ``--help`` page names value types as click does and prints no type after a flag."""

from __future__ import annotations

import re

import pytest
import typer.main
from typer.testing import CliRunner

from llmpulse.cli._help import click_label
from llmpulse.cli.main import app

# A type label in typer's own spelling: <bool>, <int>, <str>, <int range>, <list[str]>, <a|b>.
RAW_TYPE = re.compile(r"<(?:[a-z]+(?: range)?|list\[[^\]]*\]|[\w-]+(?:\|[\w-]+)+)>")


def _command_paths() -> list[list[str]]:
    """The command line of the root, of every command and of every subcommand."""
    paths: list[list[str]] = []

    def walk(command: object, path: list[str]) -> None:
        paths.append(path)
        for name, sub in sorted(getattr(command, "commands", {}).items()):
            walk(sub, [*path, name])

    walk(typer.main.get_command(app), [])
    return paths


PATHS = _command_paths()


def _help(path: list[str]) -> str:
    # Wide, so that no option row or type is wrapped across lines.
    result = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "240"})
    assert result.exit_code == 0, result.output
    return result.output


class TestHelpPages:
    def test_the_walk_finds_nested_commands(self) -> None:
        """The tree walk reaches subcommands, so every page below is really checked."""
        assert ["demo"] in PATHS and ["db", "health"] in PATHS and ["models", "update"] in PATHS

    @pytest.mark.parametrize("path", PATHS, ids=lambda p: " ".join(p) or "llmpulse")
    def test_no_raw_type_marker(self, path: list[str]) -> None:
        """No <bool>, <int>, <str> or other typer-spelled type appears on the page."""
        page = _help(path)
        assert RAW_TYPE.findall(page) == [], page

    def test_flags_are_plain_and_values_are_named_as_click_names_them(self) -> None:
        """`demo --help`: a flag row goes straight to its help; value rows say INTEGER, TEXT."""
        rows = [" ".join(line.strip("│ ").split()) for line in _help(["demo"]).splitlines()]
        assert any(r.startswith("--keep Add to what an earlier demo") for r in rows)
        assert any(r.startswith("--no-recovery Call gpt-4o") for r in rows)
        assert any(r.startswith("--help Show this message and exit.") for r in rows)
        assert any(r.startswith("--seed INTEGER Seed for tickets") for r in rows)
        assert any(r.startswith("--requests -n INTEGER RANGE [x>=20]") for r in rows)
        assert any(r.startswith("--database-url TEXT Where to record") for r in rows)

    def test_a_flag_pair_and_choices(self) -> None:
        """`--active/--inactive` shows both names and no type; choices show in brackets."""
        rows = [
            " ".join(line.strip("│ ").split()) for line in _help(["models", "update"]).splitlines()
        ]
        assert any(r.startswith("--active --inactive Mark it active") for r in rows)
        assert any(r.startswith("--type [chat|completion|") for r in rows)


class TestClickLabel:
    @pytest.mark.parametrize(
        ("typer_label", "click_word"),
        [
            ("<str>", "TEXT"),
            ("<int>", "INTEGER"),
            ("<float>", "FLOAT"),
            ("<bool>", "BOOLEAN"),
            ("<int range>", "INTEGER RANGE"),
            ("<float range>", "FLOAT RANGE"),
            ("<list[str]>", "TEXT"),
            ("<path>", "PATH"),
            ("<csv|jsonl|parquet>", "[csv|jsonl|parquet]"),
            ("<list[a|b]>", "[a|b]"),
        ],
    )
    def test_typer_labels_become_click_words(self, typer_label: str, click_word: str) -> None:
        """Each typer label the CLI uses maps to the word click prints for that type."""
        assert click_label(typer_label) == click_word
