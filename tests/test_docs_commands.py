"""Every ``llmpulse ...`` command shown in README.md and docs/*.md exists as written.

test_docs_examples.py runs the pages' Python; their shell lines are not run (they start servers,
need a database full of data or a key). Here each one is parsed by the real CLI, without running
it: a command line in a fenced block must parse whole (command, options, their values, required
arguments), and a command named in the text (`` `llmpulse stats --by name` ``) must name a
command that exists and options that it has. A renamed flag or command then fails here instead
of in a new user's shell.

Beside the commands, what the pages tell a user to type elsewhere is held to the code the same
way: every command's --help example, the README's tables of extras and pages, the
`pip install 'llmpulse[x]'` hints and the LLMPULSE_* variables.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import typer

from llmpulse.cli.main import app

ROOT = Path(__file__).resolve().parents[1]
PAGES = sorted([ROOT / "README.md", *(ROOT / "docs").glob("*.md")])
_FENCE = re.compile(r"^```(?P<lang>[^\n]*)\n(?P<code>.*?)^```", re.S | re.M)
_SHELL = {"", "bash", "sh", "shell", "console", "text"}
_INLINE = re.compile(r"`(llmpulse(?: [^`\n]*)?)`")


def _strip(command: str) -> str:
    """The llmpulse part of a shell line: no comment, redirection, pipe or background `&`."""
    command = re.sub(r"\s+#.*$", "", command)
    return re.sub(r"\s*(?:>|\||&$).*$", "", command).strip()


def _commands(page: Path) -> tuple[list[tuple[int, str]], list[tuple[int, str]]]:
    """(line, command) pairs: those on fenced shell lines, and those named in the text."""
    text = page.read_text(encoding="utf-8")
    fenced: list[tuple[int, str]] = []
    for m in _FENCE.finditer(text):
        if m["lang"].strip() not in _SHELL:
            continue
        first = text[: m.start()].count("\n") + 2
        for i, line in enumerate(m["code"].replace("\\\n", " ").splitlines()):
            line = line.strip().removeprefix("$ ")
            for part in re.split(r"&&|;|\|\|", line):
                part = _strip(part)
                if part == "llmpulse" or part.startswith("llmpulse "):
                    fenced.append((first + i, part))
    outside = _FENCE.sub(lambda m: "\n" * m[0].count("\n"), text)
    named = [
        (outside[: m.start()].count("\n") + 1, _strip(m[1])) for m in _INLINE.finditer(outside)
    ]
    return fenced, named


def _is_group(command: Any) -> bool:
    return hasattr(command, "resolve_command")


def _resolve(words: list[str]) -> tuple[Any, list[str], str]:
    """The (sub)command the words name, the words after it, and its full name."""
    command: Any = typer.main.get_command(app)
    name = "llmpulse"
    while words and _is_group(command) and not words[0].startswith("-"):
        sub = command.commands.get(words[0])
        if sub is None:
            if words[0].isupper() or words[0].endswith("..."):  # a placeholder: ARGS...
                return None, [], name
            raise AssertionError(f"`{name}` has no command {words[0]!r}")
        command, name, words = sub, f"{name} {words[0]}", words[1:]
    return command, words, name


def _option_names(command: Any) -> set[str]:
    names: set[str] = set()
    for param in command.params:
        names.update(getattr(param, "opts", ()))
        names.update(getattr(param, "secondary_opts", ()))
    return names


def _check_names(line: str) -> None:
    """The command exists and has each --option the line names."""
    command, rest, name = _resolve(shlex.split(line)[1:])
    if command is None:
        return
    known = _option_names(command) | {"--help"}
    for word in rest:
        option = re.match(r"--[a-z][a-z0-9-]*", word)
        if option and option[0] not in known:
            raise AssertionError(f"`{name}` has no option {option[0]}")


def _parse(line: str) -> None:
    """The whole line parses: command, options, their values and required arguments."""
    words = shlex.split(line)[1:]
    if "--help" in words or "--version" in words:
        _check_names(line)
        return
    command, rest, name = _resolve(words)
    if command is None or (_is_group(command) and not rest):
        raise AssertionError("a fenced command line names no command to run")
    try:
        command.make_context(name, rest)
    except Exception as exc:  # the CLI library's usage errors (typer bundles its own click)
        if not hasattr(exc, "format_message"):
            raise
        raise AssertionError(exc.format_message()) from None


def _placeholder(line: str) -> bool:
    """A synopsis (``[--window 24h]``, ``NAME``, ``...``) rather than a line to type."""
    return bool(re.search(r"\[|\.\.\.|(?<![\w-])[A-Z][A-Z_]+(?![\w-])|lp_\.\.\.", line))


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_documented_commands_exist(page: Path) -> None:
    """Each llmpulse command line of the page parses; each command it names exists."""
    fenced, named = _commands(page)
    problems = []
    for lineno, line in fenced:
        try:
            (_check_names if _placeholder(line) else _parse)(line)
        except AssertionError as exc:
            problems.append(f"{page.name}:{lineno}: {line}\n    {exc}")
    for lineno, line in named:
        try:
            _check_names(line)
        except AssertionError as exc:
            problems.append(f"{page.name}:{lineno}: `{line}`\n    {exc}")
    assert not problems, "\n".join(problems)


def _leaf_commands() -> list[tuple[str, Any]]:
    found = []

    def walk(command: Any, name: str) -> None:
        if _is_group(command):
            for sub_name, sub in command.commands.items():
                walk(sub, f"{name} {sub_name}")
        else:
            found.append((name, command))

    walk(typer.main.get_command(app), "llmpulse")
    return found


@pytest.mark.parametrize(
    "name,command", _leaf_commands(), ids=lambda x: x if isinstance(x, str) else ""
)
def test_every_command_shows_an_example_that_parses(name: str, command: Any) -> None:
    """docs/cli.md promises each command's --help has an example; it must run as written."""
    lines = [_strip(line.strip()) for line in (command.help or "").splitlines()]
    examples = [line for line in lines if line.startswith(name + " ") or line == name]
    assert examples, f"`{name} --help` shows no example"
    for line in examples:
        _parse(line)


class TestTheCheckItself:
    """The parsing above fails where a user's shell would."""

    @pytest.mark.parametrize(
        "line",
        [
            "llmpulse stat",
            "llmpulse stats --bogus",
            "llmpulse stats --by models",
            "llmpulse traces lst",
            "llmpulse flow --window 6h",
            "llmpulse db cleanup --days",
            "llmpulse traces list --limit 0",
        ],
    )
    def test_a_wrong_line_does_not_parse(self, line: str) -> None:
        with pytest.raises(AssertionError):
            _parse(line)

    @pytest.mark.parametrize(
        "line",
        ["llmpulse check --format json", "llmpulse stat", "llmpulse traces show --contents"],
    )
    def test_a_wrong_name_is_caught(self, line: str) -> None:
        with pytest.raises(AssertionError):
            _check_names(line)

    def test_right_lines_parse(self) -> None:
        _parse("llmpulse stats --by name --window 6h")
        _parse("llmpulse db cleanup --days 14 --rollup-days 180 --dry-run")
        _check_names("llmpulse flow NAME [--window 24h] [--format mermaid|svg|json]")
        _check_names("llmpulse ARGS...")


def test_readme_lists_every_extra() -> None:
    """The README's table of extras names each one pyproject declares, and no other: a user
    told by a command to install an extra finds what it brings there."""
    import tomllib

    declared = set(
        tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"][
            "optional-dependencies"
        ]
    )
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    listed = set(re.findall(r"^\| `([a-z0-9-]+)` \|", readme, re.M))
    assert listed == declared, (
        f"missing from README: {sorted(declared - listed)}; not extras: {sorted(listed - declared)}"
    )


def test_readme_links_every_docs_page() -> None:
    """Each docs/*.md page is a row of the README's documentation table, so a new user finds it."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    linked = set(re.findall(r"^\| \[docs/([\w-]+\.md)\]\(docs/\1\)", readme, re.M))
    pages = {p.name for p in (ROOT / "docs").glob("*.md")}
    assert pages <= linked, f"not in README's table: {sorted(pages - linked)}"


def test_every_pip_install_hint_names_a_real_extra() -> None:
    """`pip install 'llmpulse[x]'` in the pages or in a message of the code installs something:
    x is an extra pyproject declares (a typo would install nothing and say nothing)."""
    import tomllib

    declared = set(
        tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"][
            "optional-dependencies"
        ]
    )
    files = [*PAGES, *(ROOT / "src" / "llmpulse").rglob("*.py")]
    named = {
        (path.relative_to(ROOT).as_posix(), extra)
        for path in files
        for group in re.findall(r"llmpulse\[([a-z0-9,-]+)\]", path.read_text(encoding="utf-8"))
        for extra in group.split(",")
    }
    assert len(named) > 20, "the pattern no longer finds the hints"
    unknown = sorted(f"{where}: {extra}" for where, extra in named if extra not in declared)
    assert not unknown, unknown


def test_every_environment_variable_named_is_read_somewhere() -> None:
    """Each LLMPULSE_* variable the pages tell users to set is one the code (or, for the test
    suite's own, the tests) reads: a renamed variable would otherwise be silently ignored."""
    code = "\n".join(
        path.read_text(encoding="utf-8")
        for folder in ("src", "tests")
        for path in (ROOT / folder).rglob("*.py")
        if path.name != Path(__file__).name
    )
    named = {
        v
        for page in PAGES
        for v in re.findall(r"\bLLMPULSE_[A-Z_]*[A-Z]\b", page.read_text(encoding="utf-8"))
    }
    assert len(named) > 10, "the pattern no longer finds the variables"
    assert not sorted(v for v in named if v not in code)
