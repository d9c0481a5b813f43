"""POST /v1/responses as the real openai client sees it: shapes, streamed events, tools, faults."""

from __future__ import annotations

import asyncio
import json

import httpx
import openai
import pydantic
import pytest

from llmpulse.simulator import Faults, LLMSimulator, estimate_prompt_tokens

QUESTION = "Summarise why retries need jitter."
LONG_INSTRUCTIONS = "You are a careful assistant. " * 400  # > 1024 tokens: a cacheable prefix
WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "The weather in a city.",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
        "required": ["city", "days"],
    },
}


class Forecast(pydantic.BaseModel):
    city: str
    celsius: int


class TestResponse:
    def test_string_input(self, client: openai.OpenAI, sim: LLMSimulator) -> None:
        """A string input gets one completed assistant message and usage in Responses terms."""
        r = client.responses.create(model="gpt-4o-mini", input=QUESTION)
        assert (r.object, r.status, r.model) == ("response", "completed", "gpt-4o-mini")
        assert r.id.startswith("resp_") and r.error is None and r.incomplete_details is None
        (message,) = r.output
        assert (message.type, message.role, message.status) == ("message", "assistant", "completed")
        (part,) = message.content
        assert part.type == "output_text" and part.text and r.output_text == part.text
        u = r.usage
        assert u.input_tokens == estimate_prompt_tokens([{"role": "user", "content": QUESTION}])
        assert u.total_tokens == u.input_tokens + u.output_tokens and u.output_tokens > 0
        assert u.input_tokens_details.cached_tokens == 0
        assert u.output_tokens_details.reasoning_tokens == 0
        (record,) = sim.requests
        assert (record.path, record.model, record.n_messages, record.stream, record.status) == (
            "/v1/responses", "gpt-4o-mini", 1, False, 200,
        )  # fmt: skip
        assert (record.prompt_tokens, record.completion_tokens) == (u.input_tokens, u.output_tokens)

    def test_message_list_with_instructions(self, client: openai.OpenAI) -> None:
        """Instructions count as a system message before the items; input_text parts are text."""
        items = [
            {"role": "user", "content": "Hello."},
            {"role": "assistant", "content": "Hi, how can I help?"},
            {"role": "user", "content": [{"type": "input_text", "text": QUESTION}]},
        ]
        r = client.responses.create(model="gpt-4o", instructions="Be brief.", input=items)
        chat = [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hello."},
            {"role": "assistant", "content": "Hi, how can I help?"},
            {"role": "user", "content": QUESTION},
        ]
        assert r.usage.input_tokens == estimate_prompt_tokens(chat)
        assert r.instructions == "Be brief." and r.output_text

    def test_max_output_tokens_makes_it_incomplete(self, client: openai.OpenAI) -> None:
        """An answer cut by max_output_tokens is incomplete, with the reason, at the cap."""
        r = client.responses.create(model="gpt-4o-mini", input=QUESTION, max_output_tokens=16)
        assert (r.status, r.incomplete_details.reason) == ("incomplete", "max_output_tokens")
        assert r.usage.output_tokens == 16 and r.max_output_tokens == 16
        assert r.output[0].status == "incomplete"

    def test_reasoning_model(self, client: openai.OpenAI) -> None:
        """A reasoning model's output starts with a reasoning item; its tokens are part of output."""
        r = client.responses.create(model="o3-mini", input=QUESTION)
        assert [item.type for item in r.output] == ["reasoning", "message"]
        details = r.usage.output_tokens_details
        assert 0 < details.reasoning_tokens < r.usage.output_tokens

    def test_cached_prefix(self, client: openai.OpenAI) -> None:
        """Long instructions seen before are reported as cached input tokens, in blocks of 128."""
        first = client.responses.create(
            model="gpt-4o-mini", instructions=LONG_INSTRUCTIONS, input=QUESTION
        )
        second = client.responses.create(
            model="gpt-4o-mini", instructions=LONG_INSTRUCTIONS, input="Another question."
        )
        assert first.usage.input_tokens_details.cached_tokens == 0
        cached = second.usage.input_tokens_details.cached_tokens
        assert cached > 1024 and cached % 128 == 0 and cached <= second.usage.input_tokens

    def test_parse_fills_the_schema(self, client: openai.OpenAI) -> None:
        """responses.parse(text_format=...) gets JSON that fits the model's schema."""
        r = client.responses.parse(model="gpt-4o-mini", input=QUESTION, text_format=Forecast)
        assert isinstance(r.output_parsed, Forecast)


class TestTools:
    def test_function_call_then_answer(self, client: openai.OpenAI) -> None:
        """With a function tool the model calls it; after the tool's output it answers in text."""
        r = client.responses.create(model="gpt-4o", input="Weather in Paris?", tools=[WEATHER])
        (call,) = r.output
        assert (call.type, call.name, call.status) == ("function_call", "get_weather", "completed")
        assert set(json.loads(call.arguments)) == {"city", "days"}
        assert call.call_id.startswith("call_") and r.output_text == ""
        follow_up = client.responses.create(
            model="gpt-4o",
            tools=[WEATHER],
            input=[
                {"role": "user", "content": "Weather in Paris?"},
                {"type": "function_call", "call_id": call.call_id, "name": call.name,
                 "arguments": call.arguments},
                {"type": "function_call_output", "call_id": call.call_id, "output": "18C"},
            ],
        )  # fmt: skip
        assert [item.type for item in follow_up.output] == ["message"] and follow_up.output_text

    def test_tool_choice(self, client: openai.OpenAI) -> None:
        """tool_choice none answers in text; naming a function calls that one."""
        other = {**WEATHER, "name": "get_time"}
        r = client.responses.create(
            model="gpt-4o", input="Hi", tools=[WEATHER, other], tool_choice="none"
        )
        assert [item.type for item in r.output] == ["message"]
        r = client.responses.create(
            model="gpt-4o", input="Hi", tools=[WEATHER, other],
            tool_choice={"type": "function", "name": "get_time"},
        )  # fmt: skip
        assert r.output[0].name == "get_time"


class TestStreaming:
    def test_events_in_order_ending_with_the_full_response(
        self, client: openai.OpenAI, sim: LLMSimulator
    ) -> None:
        """Typed events numbered from 0; the deltas make the text; response.completed has usage."""
        events = list(client.responses.create(model="gpt-4o-mini", input=QUESTION, stream=True))
        assert [e.sequence_number for e in events] == list(range(len(events)))
        types = [e.type for e in events]
        assert types[:4] == [
            "response.created", "response.in_progress", "response.output_item.added",
            "response.content_part.added",
        ]  # fmt: skip
        assert types[-5:] == [
            "response.output_text.delta", "response.output_text.done",
            "response.content_part.done", "response.output_item.done", "response.completed",
        ]  # fmt: skip
        assert events[0].response.status == "in_progress" and events[0].response.usage is None
        final = events[-1].response
        text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
        assert text == final.output_text and final.usage.output_tokens > 0
        assert sim.requests[0].stream is True

    def test_stream_helper_accumulates(self, client: openai.OpenAI) -> None:
        """The client's responses.stream() helper accepts the events and builds the response."""
        with client.responses.stream(model="gpt-4o", input=QUESTION, tools=[WEATHER]) as stream:
            final = stream.get_final_response()
        (call,) = final.output
        assert call.type == "function_call" and json.loads(call.arguments)["city"]

    def test_streamed_function_arguments(self, client: openai.OpenAI) -> None:
        """A function call streams its arguments in deltas that join to the final arguments."""
        events = list(
            client.responses.create(model="gpt-4o", input="Weather?", tools=[WEATHER], stream=True)
        )
        deltas = "".join(
            e.delta for e in events if e.type == "response.function_call_arguments.delta"
        )
        assert deltas == events[-1].response.output[0].arguments

    def test_incomplete_stream_ends_with_response_incomplete(self, client: openai.OpenAI) -> None:
        """A streamed answer cut by max_output_tokens ends with response.incomplete and usage."""
        events = list(
            client.responses.create(
                model="gpt-4o-mini", input=QUESTION, max_output_tokens=16, stream=True
            )
        )
        assert events[-1].type == "response.incomplete"
        assert events[-1].response.usage.output_tokens == 16

    def test_async_stream(self, sim: LLMSimulator) -> None:
        """The async client streams the same events."""

        async def main() -> list[str]:
            async with openai.AsyncOpenAI(base_url=sim.base_url, api_key="sim", max_retries=0) as c:
                stream = await c.responses.create(model="gpt-4o-mini", input="Hi", stream=True)
                return [event.type async for event in stream]

        types = asyncio.run(main())
        assert types[0] == "response.created" and types[-1] == "response.completed"


class TestFaults:
    @pytest.mark.parametrize("stream", [False, True])
    def test_rate_limit_and_server_error(
        self, client: openai.OpenAI, sim: LLMSimulator, stream: bool
    ) -> None:
        """Scripted 429 and 500 reach the client as RateLimitError / InternalServerError."""
        sim.fail_next(1, status=429, retry_after=2)
        with pytest.raises(openai.RateLimitError) as info:
            client.responses.create(model="gpt-4o-mini", input="Hi", stream=stream)
        assert info.value.response.headers["retry-after"] == "2"
        assert info.value.code == "rate_limit_exceeded"
        sim.fail_next(1, status=500)
        with pytest.raises(openai.InternalServerError):
            client.responses.create(model="gpt-4o-mini", input="Hi", stream=stream)
        assert [(r.status, r.fault) for r in sim.requests] == [
            (429, "rate_limit"), (500, "server_error"),
        ]  # fmt: skip

    def test_model_down(self, client: openai.OpenAI, sim: LLMSimulator) -> None:
        """set_faults applies to this endpoint as to chat completions."""
        sim.set_faults(Faults(model_down=True))
        with pytest.raises(openai.InternalServerError):
            client.responses.create(model="gpt-4o-mini", input="Hi")

    def test_invalid_requests(self, client: openai.OpenAI) -> None:
        """Unknown model, missing input, a tiny max_output_tokens and an oversized prompt are refused."""
        with pytest.raises(openai.NotFoundError):
            client.responses.create(model="gpt-9", input="Hi")
        with pytest.raises(openai.BadRequestError) as info:
            client.responses.create(model="gpt-4o-mini")
        assert info.value.param == "input"
        with pytest.raises(openai.BadRequestError) as info:
            client.responses.create(model="gpt-4o-mini", input="Hi", max_output_tokens=5)
        assert info.value.param == "max_output_tokens"
        with pytest.raises(openai.BadRequestError) as info:
            client.responses.create(model="gpt-3.5-turbo", input="x" * 80_000)
        assert info.value.code == "context_length_exceeded"

    def test_bad_item_role(self, sim: LLMSimulator) -> None:
        """An input item with an unknown role is a 400 naming the item."""
        with httpx.Client(base_url=sim.base_url) as http:
            answer = http.post(
                "/responses", json={"model": "gpt-4o", "input": [{"role": "robot", "content": "x"}]}
            )
        assert answer.status_code == 400 and answer.json()["error"]["param"] == "input[0].role"
