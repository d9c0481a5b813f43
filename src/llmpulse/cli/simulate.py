"""``llmpulse simulate-llm``: run the OpenAI- and Anthropic-compatible LLM simulator in the foreground."""

from __future__ import annotations

import sys
import time
from typing import Annotated

import typer

_EXAMPLE = """\
Try it:
  import openai
  client = openai.OpenAI(base_url="{base_url}", api_key="{api_key}")
  print(client.chat.completions.create(model="{model}",
        messages=[{{"role": "user", "content": "Hello"}}]).choices[0].message.content)

Anthropic's Messages API is served too, at {url}/v1/messages:
  import anthropic
  claude = anthropic.Anthropic(base_url="{url}", api_key="{api_key}")
  print(claude.messages.create(model="claude-sonnet-4-5", max_tokens=200,
        messages=[{{"role": "user", "content": "Hello"}}]).content[0].text)

Change faults while it runs:
  curl -X POST {url}/_sim/faults -d '{{"faults": {{"error_rate": 0.3}}}}'
  curl -X POST {url}/_sim/fail_next -d '{{"n": 3, "status": 429, "retry_after": 2}}'
"""


def simulate_llm(
    port: int = typer.Option(8788, "--port", help="TCP port; 0 picks a free one (printed)."),
    host: str = typer.Option("127.0.0.1", "--host", help="Interface to bind."),
    seed: int = typer.Option(
        0, "--seed", help="Seed of every random draw (answers, latency, faults)."
    ),
    latency_ms: float = typer.Option(
        0.0, "--latency-ms", help="Median answer latency in ms (log-normal)."
    ),
    latency_sigma: float = typer.Option(
        0.0, "--latency-sigma", help="Sigma of log(latency); 0 = fixed."
    ),
    chunk_delay_ms: float = typer.Option(
        0.0, "--chunk-delay-ms", help="Pause between streamed chunks."
    ),
    error_rate: float = typer.Option(0.0, "--error-rate", help="Share of requests answered 500."),
    rate_limit_rate: float = typer.Option(
        0.0, "--rate-limit-rate", help="Share of requests answered 429."
    ),
    retry_after: float = typer.Option(
        1.0, "--retry-after", help="Retry-After seconds sent with 429s."
    ),
    rate_limit_requests: int | None = typer.Option(
        None, "--rate-limit-requests", help="Bucket: at most N requests per window per model."
    ),
    rate_limit_window: float = typer.Option(
        60.0, "--rate-limit-window", help="Bucket window in seconds."
    ),
    html_error_rate: float = typer.Option(
        0.0, "--html-error-rate", help="Share answered with an HTML 502."
    ),
    context_error_rate: float = typer.Option(
        0.0, "--context-error-rate", help="Share answered context_length_exceeded."
    ),
    token_blowup: float = typer.Option(
        1.0, "--token-blowup", help="Multiply completion tokens by this."
    ),
    down: Annotated[
        list[str] | None,
        typer.Option("--down", help="Model answering 503 to everything (repeatable)."),
    ] = None,
    model: Annotated[
        list[str] | None, typer.Option("--model", help="Serve only these models (repeatable).")
    ] = None,
    any_model: bool = typer.Option(
        False, "--any-model", help="Serve any model name instead of 404."
    ),
    api_key: str | None = typer.Option(
        None, "--api-key", help="Require this bearer key (else 401)."
    ),
) -> None:
    """Run an OpenAI-compatible LLM simulator until Ctrl-C (for demos, tests and load drills).

    Point the openai client at it with OPENAI_BASE_URL=http://127.0.0.1:8788/v1 and
    OPENAI_API_KEY=sim (any key unless --api-key). Example, slow answers and 5% of them failing:

        llmpulse simulate-llm --port 8788 --latency-ms 300 --error-rate 0.05
    """
    from llmpulse.cli._extras import require_extra

    require_extra("simulator", "llmpulse simulate-llm")
    from llmpulse.errors import SimulatorError
    from llmpulse.simulator import Faults, LLMSimulator, SimulatorConfig

    try:
        faults = Faults(
            latency_median_ms=latency_ms,
            latency_sigma=latency_sigma,
            stream_chunk_delay_ms=chunk_delay_ms,
            error_rate=error_rate,
            rate_limit_rate=rate_limit_rate,
            retry_after_s=retry_after,
            rate_limit_requests=rate_limit_requests,
            rate_limit_window_s=rate_limit_window,
            html_error_rate=html_error_rate,
            context_error_rate=context_error_rate,
            token_blowup=token_blowup,
        )
        config = SimulatorConfig(
            seed=seed,
            models=list(model or []) or None,
            faults=faults,
            host=host,
            port=port,
            api_key=api_key,
            accept_unknown_models=any_model,
            model_faults={name: Faults(model_down=True) for name in down or []},
        )
        sim = LLMSimulator(config).start()
    except SimulatorError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    # Ctrl-C may come as soon as the base URL is printed: from here on it always stops the
    # server thread, or the process would hang on it after the interrupt.
    try:
        first_model = next(iter(config.models))
        typer.echo(f"LLM simulator serving {', '.join(config.models)} at {sim.base_url}")
        typer.echo(
            _EXAMPLE.format(
                base_url=sim.base_url, url=sim.url, api_key=api_key or "sim", model=first_model
            )
        )
        typer.echo("Press Ctrl-C to stop.")
        sys.stdout.flush()
        while sim.running:
            time.sleep(0.2)
    except KeyboardInterrupt:
        pass
    finally:
        sim.stop()
        typer.echo("LLM simulator stopped.")


def register(app: typer.Typer) -> None:
    """Add ``simulate-llm`` to the llmpulse CLI."""
    app.command("simulate-llm")(simulate_llm)
