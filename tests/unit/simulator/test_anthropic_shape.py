"""The simulator's Anthropic Messages endpoint, driven by the real anthropic client."""

from __future__ import annotations

import json

import anthropic
import httpx
import pytest

from llmpulse.errors import SimulatorError
from llmpulse.simulator import Faults, LLMSimulator, SimulatorConfig
from tests.unit.anthropic_requests import MODEL, SYSTEM, USER, WEATHER


def _raw_events(sim: LLMSimulator, body: dict) -> list[tuple[str, dict]]:
    """The SSE events of a streamed request, as sent (event name, JSON data)."""
    response = httpx.post(f"{sim.url}/v1/messages", json={**body, "stream": True}, timeout=10)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    events = []
    for block in response.text.strip().split("\n\n"):
        name_line, data_line = block.split("\n")
        events.append(
            (name_line.removeprefix("event: "), json.loads(data_line.removeprefix("data: ")))
        )
    return events


class TestMessages:
    def test_message_shape_and_usage(self, claude: anthropic.Anthropic, sim: LLMSimulator) -> None:
        """A message has Anthropic's shape: msg_ id, one text block, end_turn, uncached usage."""
        message = claude.messages.create(model=MODEL, max_tokens=400, messages=USER)
        assert message.id.startswith("msg_") and message.type == "message"
        assert message.role == "assistant" and message.model == MODEL
        (block,) = message.content
        assert block.type == "text" and "jitter" in block.text.lower()
        assert message.stop_reason == "end_turn"
        usage = message.usage
        assert usage.cache_creation_input_tokens == usage.cache_read_input_tokens == 0
        (record,) = sim.requests
        assert (record.path, record.status, record.model) == ("/v1/messages", 200, MODEL)
        assert usage.input_tokens == record.prompt_tokens > 0
        assert usage.output_tokens == record.completion_tokens > 0

    def test_max_tokens_stops_the_answer(self, claude: anthropic.Anthropic) -> None:
        """An answer longer than max_tokens is cut there, with stop_reason max_tokens."""
        message = claude.messages.create(model=MODEL, max_tokens=3, messages=USER)
        assert (message.stop_reason, message.usage.output_tokens) == ("max_tokens", 3)

    def test_prompt_cache_is_written_then_read(self, claude: anthropic.Anthropic) -> None:
        """The prefix up to the breakpoint is written by the first request, read by the next;
        input_tokens counts only the rest, and the TTL bucket says which cache was written."""
        first = claude.messages.create(model=MODEL, max_tokens=20, system=SYSTEM, messages=USER)
        second = claude.messages.create(
            model=MODEL,
            max_tokens=20,
            system=SYSTEM,
            messages=[{"role": "user", "content": "And?"}],
        )
        written = first.usage.cache_creation_input_tokens
        assert written >= 1024 and first.usage.cache_read_input_tokens == 0
        assert first.usage.cache_creation.ephemeral_5m_input_tokens == written
        assert second.usage.cache_read_input_tokens == written
        assert second.usage.cache_creation_input_tokens == 0
        assert first.usage.input_tokens == 10  # the user turn only: 3 framing + 27 chars / 4
        hour = [
            {
                **SYSTEM[0],
                "text": "Another long prompt. " * 300,
                "cache_control": {"type": "ephemeral", "ttl": "1h"},
            }
        ]
        third = claude.messages.create(model=MODEL, max_tokens=20, system=hour, messages=USER)
        assert (
            third.usage.cache_creation.ephemeral_1h_input_tokens
            == third.usage.cache_creation_input_tokens
            > 0
        )

    def test_short_prefix_is_not_cached(self, claude: anthropic.Anthropic) -> None:
        """A breakpoint on a prefix under 1024 tokens caches nothing."""
        system = [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}]
        for _ in range(2):
            usage = claude.messages.create(
                model=MODEL, max_tokens=5, system=system, messages=USER
            ).usage
            assert (usage.cache_creation_input_tokens, usage.cache_read_input_tokens) == (0, 0)


class TestToolUse:
    def test_tool_call_then_answer(self, claude: anthropic.Anthropic) -> None:
        """With tools, the model calls one (input per its schema); given the result, it answers."""
        message = claude.messages.create(
            model=MODEL, max_tokens=500, tools=[WEATHER], messages=USER
        )
        assert message.stop_reason == "tool_use"
        text, call = message.content
        assert text.type == "text" and call.type == "tool_use"
        assert call.name == "get_weather" and call.id.startswith("toolu_")
        assert set(call.input) == {"city", "days"} and isinstance(call.input["days"], int)
        follow_up = [
            *USER,
            {
                "role": "assistant",
                "content": [b.model_dump(exclude_none=True) for b in message.content],
            },
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "Sunny"}],
            },
        ]
        answer = claude.messages.create(
            model=MODEL, max_tokens=500, tools=[WEATHER], messages=follow_up
        )
        assert answer.stop_reason == "end_turn" and [b.type for b in answer.content] == ["text"]

    def test_tool_choice(self, claude: anthropic.Anthropic) -> None:
        """tool_choice none answers in text; a forced tool is called with no preamble."""
        other = {**WEATHER, "name": "get_time"}
        none = claude.messages.create(model=MODEL, max_tokens=2000, tools=[WEATHER],
                                      tool_choice={"type": "none"}, messages=USER)  # fmt: skip
        assert none.stop_reason == "end_turn"
        forced = claude.messages.create(model=MODEL, max_tokens=50, tools=[WEATHER, other],
                                        tool_choice={"type": "tool", "name": "get_time"},
                                        messages=USER)  # fmt: skip
        (call,) = forced.content
        assert (call.type, call.name, forced.stop_reason) == ("tool_use", "get_time", "tool_use")


class TestThinking:
    def test_thinking_block_and_tokens(self, claude: anthropic.Anthropic) -> None:
        """Extended thinking: a thinking block (with a signature) before the text; its tokens are
        inside output_tokens and also given as output_tokens_details.thinking_tokens."""
        thinking = {"type": "enabled", "budget_tokens": 1024}
        message = claude.messages.create(
            model=MODEL, max_tokens=4000, thinking=thinking, messages=USER
        )
        thought, text = message.content
        assert (thought.type, text.type) == ("thinking", "text")
        assert thought.thinking and thought.signature.startswith("sig_")
        spent = message.usage.output_tokens_details.thinking_tokens
        assert 0 < spent <= 1024 and message.usage.output_tokens > spent

    def test_thinking_streams_and_budget_is_checked(
        self, claude: anthropic.Anthropic, sim: LLMSimulator
    ) -> None:
        """Streamed thinking arrives as thinking_delta then signature_delta; a budget not below
        max_tokens, or under 1024, is a 400 naming it."""
        body = {"model": MODEL, "max_tokens": 3000, "thinking": {"type": "enabled", "budget_tokens": 2000},
                "messages": USER}  # fmt: skip
        events = _raw_events(sim, body)
        kinds = [
            d["delta"]["type"] for n, d in events if n == "content_block_delta" and d["index"] == 0
        ]
        assert set(kinds[:-1]) == {"thinking_delta"} and kinds[-1] == "signature_delta"
        assert events[-2][1]["usage"]["output_tokens_details"]["thinking_tokens"] > 0
        for budget, max_tokens, message in ((2000, 2000, "greater than"), (500, 2000, ">= 1024")):
            with pytest.raises(anthropic.BadRequestError, match=message):
                claude.messages.create(model=MODEL, max_tokens=max_tokens, messages=USER,
                                       thinking={"type": "enabled", "budget_tokens": budget})  # fmt: skip


class TestStreaming:
    def test_events_in_order_with_cumulative_usage(self, sim: LLMSimulator) -> None:
        """message_start (input usage, output 1), block start/deltas/stop per block,
        message_delta with the final cumulative usage, message_stop."""
        body = {"model": MODEL, "max_tokens": 300, "tools": [WEATHER], "messages": USER}
        events = _raw_events(sim, body)
        names = [name for name, _ in events]
        assert names[:2] == ["message_start", "ping"] and names[-2:] == [
            "message_delta",
            "message_stop",
        ]
        assert all(data["type"] == name for name, data in events)
        start = events[0][1]["message"]["usage"]
        final = events[-2][1]["usage"]
        assert start["output_tokens"] == 1
        assert final["input_tokens"] == start["input_tokens"]
        assert final["cache_read_input_tokens"] == start["cache_read_input_tokens"] == 0
        assert final["output_tokens"] > 1
        starts = [d["content_block"]["type"] for n, d in events if n == "content_block_start"]
        assert starts == ["text", "tool_use"]
        deltas = {d["delta"]["type"] for n, d in events if n == "content_block_delta"}
        assert deltas == {"text_delta", "input_json_delta"}
        assert events[-2][1]["delta"]["stop_reason"] == "tool_use"

    def test_stream_matches_the_final_message(self, claude: anthropic.Anthropic) -> None:
        """The client's stream helper rebuilds the text and a tool call from the events."""
        with claude.messages.stream(
            model=MODEL, max_tokens=300, tools=[WEATHER], messages=USER
        ) as stream:
            text = "".join(stream.text_stream)
            message = stream.get_final_message()
        assert message.content[0].text == text and message.content[1].input["city"]
        assert message.usage.output_tokens > 1 and message.stop_reason == "tool_use"

    def test_output_only_delta_usage(self) -> None:
        """anthropic_delta_usage="output_only" sends only output_tokens in message_delta."""
        with LLMSimulator(SimulatorConfig(anthropic_delta_usage="output_only")) as sim:
            events = _raw_events(sim, {"model": MODEL, "max_tokens": 20, "messages": USER})
        assert list(events[-2][1]["usage"]) == ["output_tokens"]
        with pytest.raises(SimulatorError, match="anthropic_delta_usage"):
            SimulatorConfig(anthropic_delta_usage="sum")


class TestErrors:
    def test_rate_limit(self, claude: anthropic.Anthropic, sim: LLMSimulator) -> None:
        """A scripted 429 is a RateLimitError with Retry-After and Anthropic's error body."""
        sim.fail_next(1, status=429, retry_after=2)
        with pytest.raises(anthropic.RateLimitError) as info:
            claude.messages.create(model=MODEL, max_tokens=20, messages=USER)
        assert info.value.response.headers["retry-after"] == "2"
        assert info.value.body["error"]["type"] == "rate_limit_error"

    @pytest.mark.parametrize(
        ("kind", "error", "status"),
        [
            ("overloaded", anthropic.OverloadedError, 529),
            ("server_error", anthropic.InternalServerError, 500),
            ("context_length", anthropic.BadRequestError, 400),
            ("auth", anthropic.AuthenticationError, 401),
        ],
    )
    def test_fault_kinds(self, claude: anthropic.Anthropic, sim: LLMSimulator, kind: str,
                         error: type, status: int) -> None:  # fmt: skip
        """Each fault kind is the anthropic exception the real API's status gives."""
        sim.fail_next(1, kind=kind)
        with pytest.raises(error) as info:
            claude.messages.create(model=MODEL, max_tokens=20, messages=USER)
        assert info.value.status_code == status

    def test_bad_requests(self, sim: LLMSimulator, claude: anthropic.Anthropic) -> None:
        """A missing max_tokens, an unknown model and a too large max_tokens are named."""
        bad = httpx.post(
            f"{sim.url}/v1/messages", json={"model": MODEL, "messages": USER}, timeout=10
        )
        assert bad.status_code == 400 and "max_tokens" in bad.json()["error"]["message"]
        with pytest.raises(anthropic.NotFoundError, match="claude-none"):
            claude.messages.create(model="claude-none", max_tokens=20, messages=USER)
        with pytest.raises(anthropic.BadRequestError, match="max_tokens"):
            claude.messages.create(
                model="claude-haiku-4-5", max_tokens=64_001, messages=USER, timeout=30
            )

    def test_api_key_header(self) -> None:
        """With an api_key set, x-api-key must match."""
        with LLMSimulator(SimulatorConfig(api_key="k1")) as sim:
            with (
                anthropic.Anthropic(base_url=sim.url, api_key="k2", max_retries=0) as wrong,
                pytest.raises(anthropic.AuthenticationError),
            ):
                wrong.messages.create(model=MODEL, max_tokens=5, messages=USER)
            with anthropic.Anthropic(base_url=sim.url, api_key="k1", max_retries=0) as right:
                assert right.messages.create(model=MODEL, max_tokens=5, messages=USER).content

    def test_faults_apply_to_both_endpoints(
        self, claude: anthropic.Anthropic, sim: LLMSimulator
    ) -> None:
        """set_faults steers /v1/messages as it steers chat completions."""
        sim.set_faults(Faults(model_down=True, down_status=503))
        with pytest.raises(anthropic.InternalServerError):
            claude.messages.create(model=MODEL, max_tokens=5, messages=USER)
        assert sim.statuses() == [503]
