"""Channel specs: typed fields, unknown fields refused, secrets from inline, env or file."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmpulse._config_file import FieldError
from llmpulse.alerting.channels import Secret, Spec


class TestFields:
    def test_unknown_field_is_refused(self) -> None:
        """A typo (`pasword`) is refused by name, listing the allowed fields."""
        with pytest.raises(FieldError, match="pasword: unknown field") as exc:
            Spec({"type": "email", "pasword": "x"}, {"host"}, {"password"})
        assert exc.value.field == "pasword" and "password_env" in str(exc.value)

    def test_typed_getters(self) -> None:
        """Strings, booleans, integers, durations, lists and label maps are read and checked."""
        spec = Spec(
            {"h": "a", "b": True, "n": 3, "d": "2m", "d2": 1.5, "l": "x", "m": {"k": "v"}},
            {"h", "b", "n", "d", "d2", "l", "m"},
        )
        assert spec.text("h") == "a" and spec.flag("b", False) is True
        assert spec.integer("n", 1, lo=1, hi=5) == 3 and spec.seconds("d", 1, hi=600) == 120
        assert spec.seconds("d2", 1, hi=600) == 1.5 and spec.text_list("l") == ["x"]
        assert spec.labels("m") == {"k": "v"}

    @pytest.mark.parametrize(
        ("data", "call", "needle"),
        [
            ({"b": "yes"}, lambda s: s.flag("b", False), "b: must be true or false"),
            (
                {"n": 9},
                lambda s: s.integer("n", 1, lo=1, hi=5),
                "n: must be an integer from 1 to 5",
            ),
            ({"d": "soon"}, lambda s: s.seconds("d", 1, hi=60), "d: .*not a duration"),
            ({"d": 0}, lambda s: s.seconds("d", 1, hi=60), "d: must be more than 0"),
            ({"h": 3}, lambda s: s.text("h"), "h: must be a non-empty string"),
            ({}, lambda s: s.required_text("h"), "h: required"),
            ({"l": []}, lambda s: s.text_list("l"), "l: must be a string or a non-empty list"),
            ({"m": {"k": 1}}, lambda s: s.labels("m"), "m.k: names and values must be strings"),
        ],
    )
    def test_bad_values_name_the_field(self, data, call, needle) -> None:  # type: ignore[no-untyped-def]
        """Each bad value raises a FieldError naming its field and what is allowed."""
        with pytest.raises(FieldError, match=needle):
            call(Spec(data, set(data) | {"h"}))

    def test_env_expansion(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """${VAR} in a string field is replaced; a missing variable is named."""
        monkeypatch.setenv("ONCALL", "ops@example.com")
        assert Spec({"to": "${ONCALL}"}, {"to"}).text_list("to") == ["ops@example.com"]
        with pytest.raises(FieldError, match="to: environment variable NOPE is not set"):
            Spec({"to": "${NOPE}"}, {"to"}).text("to")


class TestSecrets:
    def test_inline_env_and_file(self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
        """A secret comes inline, from ${VAR}, from password_env or from password_file."""
        monkeypatch.setenv("SMTP_PW", "hunter2")
        f = tmp_path / "pw"
        f.write_text("from-file\n")
        cases = [
            ({"password": "inline-pw"}, "inline-pw", "inline"),
            ({"password": "${SMTP_PW}"}, "hunter2", "env SMTP_PW"),
            ({"password_env": "SMTP_PW"}, "hunter2", "env SMTP_PW"),
            ({"password_file": str(f)}, "from-file", f"file {f}"),
        ]
        for data, value, source in cases:
            secret = Spec(data, set(), {"password"}).secret("password")
            assert isinstance(secret, Secret)
            assert (secret.reveal(), secret.source) == (value, source)
            assert value not in repr(secret) and value not in str(secret)
            assert value not in f"{secret}" and value not in str([secret])

    def test_secret_errors(self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
        """Two sources, a missing variable or file, an empty file: errors name the field only."""
        monkeypatch.setenv("PW", "topsecret")
        empty = tmp_path / "empty"
        empty.write_text("  \n")
        cases = [
            ({"password": "a", "password_env": "PW"}, "password: give only one of"),
            ({"password_env": "MISSING_VAR"}, "password_env: environment variable MISSING_VAR"),
            ({"password_file": str(tmp_path / "nope")}, "password_file: cannot read"),
            ({"password_file": str(empty)}, "password_file: .* is empty"),
            ({}, "password: required"),
        ]
        for data, needle in cases:
            with pytest.raises(FieldError, match=needle) as exc:
                Spec(data, set(), {"password"}).secret("password", required=True)
            assert "topsecret" not in str(exc.value)
