"""Configuration files: read YAML once, and point an error at the file, line and field.

Every YAML file llmpulse reads (check settings, price files, recovery policies) goes through
:func:`read_yaml_file`, so they fail the same way:

- a file that cannot be read, or is not YAML, names the file (and YAML's own line);
- a bad value is raised by the validator as a :class:`FieldError` naming its field (a dotted
  path such as ``live.latency_spike.multiplier``) and what is wrong, without knowing where the
  data came from; :meth:`YamlFile.locate` then turns it into
  ``checks.yaml line 12: live.latency_spike.multiplier: must be a number, got 'x'``.

The same validators run on plain dicts built in code, where a ``FieldError`` is just a
``ConfigError`` whose message names the field. Standard library only (PyYAML is imported when a
file is read), because the price table is part of ``import llmpulse``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from llmpulse.errors import ConfigError

__all__ = ["FieldError", "YamlFile", "read_yaml_file"]

#: A field's place in a document: a dotted path (``"live.alpha"``, ``"rules[2]"``) or the keys
#: themselves (``("models", "gpt-4.1", "input")``) when keys may contain dots.
FieldPath = str | tuple[Any, ...]


class FieldError(ConfigError):
    """A bad value at ``field``; ``detail`` says what is wrong (and what is allowed)."""

    def __init__(self, message: str, field: FieldPath, detail: str) -> None:
        super().__init__(message)
        self.field = field
        self.detail = detail


class YamlFile:
    """A parsed YAML file: ``data``, and the line of any field in it."""

    def __init__(self, path: Path, text: str, data: Any) -> None:
        self.path = path
        self.text = text
        self.data = data
        self._root: Any = None

    def line(self, field: FieldPath) -> int | None:
        """1-based line of ``field`` (of its closest enclosing key when it is absent)."""
        import yaml

        if self._root is None:
            try:
                self._root = yaml.compose(self.text, Loader=yaml.SafeLoader) or False
            except yaml.YAMLError:  # pragma: no cover - the text parsed once already
                self._root = False
        if self._root is False:
            return None
        node: Any = self._root
        line: int = node.start_mark.line + 1
        rest: list[Any] | str = list(field) if isinstance(field, tuple) else field
        while rest != [] and rest != "":
            found = _child(node, rest)
            if found is None:
                break
            node, key_line, rest = found
            line = key_line
        return line

    def where(self, field: FieldPath) -> str:
        """``<file> line <n>: <field>`` for messages."""
        line = self.line(field)
        at = f" line {line}" if line is not None else ""
        return f"{self.path}{at}: {_dotted(field) or '(top level)'}"

    def locate(self, exc: FieldError, error: type[ConfigError] = ConfigError) -> ConfigError:
        """The same error, now naming the file and the line of its field."""
        return error(f"{self.where(exc.field)}: {exc.detail}")


def _dotted(field: FieldPath) -> str:
    if isinstance(field, str):
        return field
    out = ""
    for key in field:
        out += f"[{key}]" if isinstance(key, int) else (f".{key}" if out else str(key))
    return out


def _child(node: Any, rest: list[Any] | str) -> tuple[Any, int, list[Any] | str] | None:
    """The child of ``node`` that ``rest`` starts with, its line, and what remains of ``rest``."""
    return _child_by_key(node, rest) if isinstance(rest, list) else _child_by_text(node, rest)


def _child_by_key(node: Any, rest: list[Any]) -> tuple[Any, int, list[Any]] | None:
    import yaml

    key = rest[0]
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            if k.value == str(key):
                return v, k.start_mark.line + 1, rest[1:]
    if isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
        item = node.value[key]
        return item, item.start_mark.line + 1, rest[1:]
    return None


def _child_by_text(node: Any, rest: str) -> tuple[Any, int, str] | None:
    import yaml

    if rest.startswith("["):  # "[3].x" in a sequence
        index, _, after = rest[1:].partition("]")
        if isinstance(node, yaml.SequenceNode) and index.isdigit() and int(index) < len(node.value):
            item = node.value[int(index)]
            return item, item.start_mark.line + 1, after.removeprefix(".")
        return None
    if isinstance(node, yaml.MappingNode):
        # The longest key the dotted path starts with: keys may hold dots themselves.
        best = None
        for k, v in node.value:
            name = str(k.value)
            if (rest == name or rest.startswith((name + ".", name + "["))) and (
                best is None or len(name) > len(best[0])
            ):
                best = (name, k, v)
        if best is not None:
            name, k, v = best
            return v, k.start_mark.line + 1, rest[len(name) :].removeprefix(".")
    return None


def read_yaml_file(path: str | Path, what: str, error: type[ConfigError] = ConfigError) -> YamlFile:
    """Read and parse ``path``; ``what`` names the file's role in errors ("price file")."""
    import yaml

    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise error(f"cannot read {what} {p}: {exc.strerror or exc}") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise error(f"{what} {p} is not valid YAML: {exc}") from exc
    return YamlFile(p, text, data)
