"""``llmpulse models list|add|update``: the model catalog, in a database or on a server.

The catalog names each model's provider, prices, limits and type; a server prices the spans it
ingests without a cost from it (see docs/server.md). Prices are typed here in USD per million
tokens, as providers publish them, and stored and served per token (``/api/v1/models``).
"""

from __future__ import annotations

import enum
import json
import sys
from dataclasses import asdict
from typing import Annotated, Any, Optional

import typer

from llmpulse.cli._options import ApiKey, DatabaseUrl, ServerUrl

__all__ = ["MODEL_TYPES", "register"]

models_app = typer.Typer(
    name="models",
    help="List, add and update the model catalog (prices, limits, type) of a database or server.",
    no_args_is_help=True,
)


class ModelType(str, enum.Enum):
    """What a model does: the values /api/v1/models accepts (a test pins them to the server's)."""

    chat = "chat"
    completion = "completion"
    embedding = "embedding"
    image = "image"
    audio = "audio"
    rerank = "rerank"
    other = "other"


MODEL_TYPES = tuple(t.value for t in ModelType)
_PER_MILLION = 1e6
_MAX_PRICE = 1e6  # USD per million tokens: the API's 1 USD per token
_MAX_NAME = 200

_Price = Optional[float]  # noqa: UP045 - typer reads annotations at runtime (Python 3.10 too)
_Count = Optional[int]  # noqa: UP045
_Text = Optional[str]  # noqa: UP045


def _price(flag: str, what: str) -> Any:
    return typer.Option(flag, min=0.0, max=_MAX_PRICE, help=f"USD per million {what} tokens.")


_Provider = Annotated[
    _Text, typer.Option("--provider", help="Who serves it: openai, anthropic, ...")
]
_Input = Annotated[_Price, _price("--input-price", "input")]
_Output = Annotated[_Price, _price("--output-price", "output")]
_CacheRead = Annotated[_Price, _price("--cache-read-price", "cache-read input")]
_CacheWrite = Annotated[_Price, _price("--cache-write-price", "cache-write input")]
_Reasoning = Annotated[_Price, _price("--reasoning-price", "reasoning output")]
_Context = Annotated[
    _Count, typer.Option("--context-length", min=1, max=2**40, help="Context window in tokens.")
]
_MaxTokens = Annotated[
    _Count, typer.Option("--max-tokens", min=1, max=2**40, help="Longest output in tokens.")
]
_Json = Annotated[bool, typer.Option("--json", help="Print the model(s) as JSON (prices per token, as the API).")]  # fmt: skip


def _values(
    provider: str | None,
    prices: dict[str, float | None],
    context_length: int | None,
    max_tokens: int | None,
    model_type: ModelType | None,
    active: bool | None,
) -> dict[str, Any]:
    """The fields that were given, prices converted to USD per token."""
    if provider is not None and not 0 < len(provider) <= _MAX_NAME:
        raise typer.BadParameter(f"must be 1 to {_MAX_NAME} characters", param_hint="--provider")
    values: dict[str, Any] = {
        f"{name}_price_per_token": value / _PER_MILLION
        for name, value in prices.items()
        if value is not None
    }
    given = {"provider": provider, "context_length": context_length, "max_tokens": max_tokens,
             "model_type": None if model_type is None else model_type.value, "active": active}  # fmt: skip
    values.update({k: v for k, v in given.items() if v is not None})
    return values


def _check_name(name: str) -> str:
    if not name or name != name.strip() or len(name) > _MAX_NAME:
        raise typer.BadParameter(
            f"a model name is 1 to {_MAX_NAME} characters, without leading or trailing spaces",
            param_hint="NAME",
        )
    return name


def _open(database_url: str | None, server_url: str | None, api_key: str | None, what: str) -> Any:
    from llmpulse.cli._source import open_source

    return open_source(database_url, server_url, api_key, f"llmpulse models {what}")


@models_app.command("list")
def list_models(
    active_only: bool = typer.Option(False, "--active-only", help="Only models marked active."),
    database_url: DatabaseUrl = None,
    server_url: ServerUrl = None,
    api_key: ApiKey = None,
    as_json: _Json = False,
) -> None:
    """List the catalog by name: provider, type, prices per million tokens, limits.

    Example, through a server:

        llmpulse models list --server-url http://127.0.0.1:8000
    """
    from llmpulse.cli._options import run_or_exit

    def work() -> tuple[str, list[Any]]:
        source = _open(database_url, server_url, api_key, "list")
        try:
            return source.label, source.list_models(active_only)
        finally:
            source.close()

    label, models = run_or_exit(work)
    if as_json:
        sys.stdout.write(json.dumps([asdict(m) for m in models], indent=2) + "\n")
        return
    _print_table(label, models)


@models_app.command("add")
def add(
    name: str = typer.Argument(..., help="The model's name as spans carry it (gpt-4o-mini)."),
    provider: _Provider = None,
    input_price: _Input = None,
    output_price: _Output = None,
    cache_read_price: _CacheRead = None,
    cache_write_price: _CacheWrite = None,
    reasoning_price: _Reasoning = None,
    context_length: _Context = None,
    max_tokens: _MaxTokens = None,
    model_type: Annotated[ModelType, typer.Option("--type", help="What the model does.")] = ModelType.chat,
    inactive: bool = typer.Option(False, "--inactive", help="Add it marked inactive."),
    database_url: DatabaseUrl = None,
    server_url: ServerUrl = None,
    api_key: ApiKey = None,
    as_json: _Json = False,
) -> None:  # fmt: skip
    """Add a model to the catalog (an error if the name exists: use `models update`).

    With input and output prices, a server prices the spans of this model it ingests without a
    cost. Through a server this needs an `admin` key. Example:

        llmpulse models add my-finetune --provider openai --input-price 3 --output-price 12
    """
    from llmpulse.cli._options import run_or_exit

    prices = {"input": input_price, "output": output_price, "cache_read": cache_read_price,
              "cache_write": cache_write_price, "reasoning": reasoning_price}  # fmt: skip
    _check_name(name)
    values = _values(provider, prices, context_length, max_tokens, model_type,
                     False if inactive else None)  # fmt: skip

    def work() -> tuple[str, Any]:
        source = _open(database_url, server_url, api_key, "add")
        try:
            return source.label, source.add_model(name, values)
        finally:
            source.close()

    label, model = run_or_exit(work)
    _print_one("added", label, model, as_json)


@models_app.command("update")
def update(
    name: str = typer.Argument(..., help="The model to change."),
    provider: _Provider = None,
    input_price: _Input = None,
    output_price: _Output = None,
    cache_read_price: _CacheRead = None,
    cache_write_price: _CacheWrite = None,
    reasoning_price: _Reasoning = None,
    context_length: _Context = None,
    max_tokens: _MaxTokens = None,
    model_type: Annotated[Optional[ModelType], typer.Option("--type", help="What the model does.")] = None,  # noqa: UP045
    active: Annotated[Optional[bool], typer.Option("--active/--inactive", help="Mark it active or inactive.")] = None,  # noqa: UP045
    database_url: DatabaseUrl = None,
    server_url: ServerUrl = None,
    api_key: ApiKey = None,
    as_json: _Json = False,
) -> None:  # fmt: skip
    """Change the given fields of a model; the others stay as they are.

    Through a server this needs an `admin` key. Example, a price change:

        llmpulse models update gpt-4o --input-price 2.5 --output-price 10
    """
    from llmpulse.cli._options import fail, run_or_exit

    prices = {"input": input_price, "output": output_price, "cache_read": cache_read_price,
              "cache_write": cache_write_price, "reasoning": reasoning_price}  # fmt: skip
    values = _values(provider, prices, context_length, max_tokens, model_type, active)
    if not values:
        raise fail(
            "nothing to change: give at least one option (see `llmpulse models update --help`)"
        )

    def work() -> tuple[str, Any]:
        source = _open(database_url, server_url, api_key, "update")
        try:
            return source.label, source.update_model(name, values)
        finally:
            source.close()

    label, model = run_or_exit(work)
    _print_one("updated", label, model, as_json)


def _per_million(value: float | None) -> str:
    return "-" if value is None else f"{value * _PER_MILLION:,.6g}"


def _print_one(verb: str, label: str, model: Any, as_json: bool) -> None:
    if as_json:
        sys.stdout.write(json.dumps(asdict(model), indent=2) + "\n")
        return
    _print_table(label, [model], title=f"{verb} {model.name}")


def _print_table(label: str, models: list[Any], title: str | None = None) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console()
    if not console.is_terminal:
        console = Console(width=160)
    console.print(f"[bold]llmpulse models[/] {escape(label)}"
                  + (f": {escape(title)}" if title else ""), soft_wrap=True)  # fmt: skip
    if not models:
        console.print("[dim]No models in the catalog. Add one with `llmpulse models add NAME`.[/]")
        return
    table = Table(header_style="bold", caption="prices in USD per million tokens")
    for column in ("name", "provider", "type", "active"):
        table.add_column(column, no_wrap=True)
    for column in (
        "input",
        "output",
        "cache read",
        "cache write",
        "reasoning",
        "context",
        "max out",
    ):
        table.add_column(column, justify="right")
    for m in models:
        table.add_row(
            escape(m.name), escape(m.provider or "-"), m.model_type, "yes" if m.active else "no",
            _per_million(m.input_price_per_token), _per_million(m.output_price_per_token),
            _per_million(m.cache_read_price_per_token), _per_million(m.cache_write_price_per_token),
            _per_million(m.reasoning_price_per_token),
            "-" if m.context_length is None else f"{m.context_length:,}",
            "-" if m.max_tokens is None else f"{m.max_tokens:,}",
        )  # fmt: skip
    console.print(table)


def register(app: typer.Typer) -> None:
    """Add the ``models`` command group to the app."""
    app.add_typer(models_app, name="models")
