"""The CLI names the extra a command needs, read from the package metadata."""

from __future__ import annotations

import pytest
import typer
from typer.testing import CliRunner

from llmpulse.cli._extras import missing_for_extra, require_extra

REQUIRES = [
    "sqlalchemy>=2",
    'scipy>=1.11; extra == "detection"',
    'llmpulse-no-such-distribution>=1; extra == "ghost"',
    "llmpulse[ghost,detection]; extra == 'demo'",
]


class TestMissingForExtra:
    def test_every_extra_of_this_install_is_complete(self) -> None:
        """The dev install holds every extra the commands ask for."""
        for extra in (
            "demo",
            "simulator",
            "detection",
            "recovery",
            "postgres",
            "client",
            "all",
            "dev",
        ):
            assert missing_for_extra(extra) == [], extra

    def test_a_missing_distribution_is_named(self) -> None:
        """A requirement whose distribution is not installed is reported by name."""
        assert missing_for_extra("ghost", REQUIRES) == ["llmpulse-no-such-distribution"]
        assert missing_for_extra("detection", REQUIRES) == []

    def test_nested_extras_are_followed(self) -> None:
        """An extra made of other extras (llmpulse[a,b]) reports what those miss."""
        assert missing_for_extra("demo", REQUIRES) == ["llmpulse-no-such-distribution"]

    def test_an_undeclared_extra_is_an_error(self) -> None:
        """A typo in an extra's name fails instead of passing as complete."""
        with pytest.raises(ValueError, match="no extra 'demoo'"):
            missing_for_extra("demoo")


class TestRequireExtra:
    def test_a_command_without_its_extra_says_what_to_install(self) -> None:
        """The command exits with the given code and the pip command, no traceback."""
        app = typer.Typer()

        @app.command()
        def run() -> None:
            require_extra("ghost", "llmpulse run", code=2, requires=REQUIRES)
            typer.echo("ran")

        result = CliRunner().invoke(app, [])
        assert result.exit_code == 2
        assert "pip install 'llmpulse[ghost]'" in result.output
        assert "llmpulse-no-such-distribution" in result.output
        assert "ran" not in result.output
        assert "Traceback" not in result.output

    def test_an_installed_extra_lets_the_command_run(self) -> None:
        """With its extra installed, require_extra returns and the command goes on."""
        require_extra("demo", "llmpulse demo")


class TestImportWithoutItsExtra:
    @pytest.mark.parametrize(
        "module,dependency,extra",
        [
            ("llmpulse.detection", "scipy", "detection"),
            ("llmpulse.checks", "scipy", "detection"),
            ("llmpulse.recovery", "tenacity", "recovery"),
        ],
    )
    def test_the_error_names_the_extra(self, module: str, dependency: str, extra: str) -> None:
        """On a base install, importing an extra's module says which pip install brings it
        (still a ModuleNotFoundError naming the missing module, for code that catches it)."""
        import subprocess
        import sys

        code = (
            "import sys\n"
            f"sys.modules[{dependency!r}] = None  # as if it were not installed\n"
            "try:\n"
            f"    import {module}\n"
            "except ModuleNotFoundError as exc:\n"
            "    print(exc.name, '|', exc)\n"
        )
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
        ).stdout
        assert out.startswith(f"{dependency} | ")
        assert f"pip install 'llmpulse[{extra}]'" in out
