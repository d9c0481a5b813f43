"""The price table: lookup, billing buckets, overrides and bad price files."""

from __future__ import annotations

import logging

import pytest

from llmpulse.errors import PriceTableError
from llmpulse.pricing import ModelPrice, PriceTable, default_price_table


class TestLookup:
    def test_exact_name(self) -> None:
        """A listed model resolves to its own entry."""
        assert PriceTable.default().lookup("gpt-4o") == ModelPrice(2.50, 10.0, 1.25)

    def test_dated_suffix_resolves_to_longest_key(self) -> None:
        """A dated model name resolves to the longest matching key, not a shorter sibling."""
        table = PriceTable.default()
        assert table.lookup("gpt-4o-mini-2024-07-18") == table.lookup("gpt-4o-mini")
        assert table.lookup("gpt-4o-2024-08-06") == table.lookup("gpt-4o")

    def test_provider_prefix_and_case(self) -> None:
        """Provider prefixes and upper case do not defeat the lookup."""
        table = PriceTable.default()
        assert table.lookup("openai/GPT-4o") == table.lookup("gpt-4o")
        assert table.lookup("meta-llama/Llama-3.3-70B-Instruct-Turbo") == table.lookup(
            "llama-3.3-70b-instruct"
        )

    def test_prefix_needs_a_separator(self) -> None:
        """'gpt-4ox' is not mistaken for gpt-4o: a suffix must start with a separator."""
        assert PriceTable.default().lookup("gpt-4ox") is None

    def test_unknown_model_costs_none_and_warns_once(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        """An unknown model gives cost None, never 0, and one warning however often it is seen."""
        table = PriceTable.default()
        with caplog.at_level(logging.WARNING, logger="llmpulse.pricing"):
            costs = [
                table.cost("my-private-model", input_tokens=10, output_tokens=5) for _ in range(3)
            ]
        assert costs == [None, None, None]
        assert len([r for r in caplog.records if "my-private-model" in r.getMessage()]) == 1

    def test_no_tokens_costs_none(self) -> None:
        """A call with no token counts has no cost rather than a cost of 0."""
        assert PriceTable.default().cost("gpt-4o") is None


class TestBillingBuckets:
    def test_plain_input_and_output(self) -> None:
        """Cost is input and output tokens at their per-million prices."""
        price = ModelPrice(input=2.0, output=8.0)
        assert price.cost(1_000_000, 500_000) == pytest.approx(2.0 + 4.0)

    def test_cached_tokens_are_not_double_counted(self) -> None:
        """Cache reads are part of input tokens: they are billed once, at the cache rate."""
        price = ModelPrice(input=2.50, output=10.0, cache_read=1.25)
        # 1M input of which 400k came from the cache.
        cost = price.cost(input_tokens=1_000_000, output_tokens=0, cache_read_tokens=400_000)
        assert cost == pytest.approx(600_000 * 2.50e-6 + 400_000 * 1.25e-6)
        assert cost < price.cost(1_000_000, 0)

    def test_cache_writes_and_reads_together(self) -> None:
        """Cache writes and reads each get their own rate; the rest is plain input."""
        price = ModelPrice(input=3.0, output=15.0, cache_read=0.30, cache_write=3.75)
        cost = price.cost(
            input_tokens=10_000,
            output_tokens=1_000,
            cache_read_tokens=6_000,
            cache_write_tokens=2_000,
        )
        expected = (2_000 * 3.0 + 6_000 * 0.30 + 2_000 * 3.75 + 1_000 * 15.0) * 1e-6
        assert cost == pytest.approx(expected)

    def test_reasoning_tokens_are_part_of_output(self) -> None:
        """Reasoning tokens are inside output tokens and billed once, at the reasoning rate if any."""
        price = ModelPrice(input=1.0, output=4.0, reasoning=2.0)
        assert price.cost(0, 1_000, reasoning_tokens=600) == pytest.approx(
            (400 * 4.0 + 600 * 2.0) * 1e-6
        )
        assert ModelPrice(1.0, 4.0).cost(0, 1_000, reasoning_tokens=600) == pytest.approx(
            1_000 * 4.0e-6
        )

    def test_inconsistent_counts_are_clamped(self) -> None:
        """More cached than input tokens cannot produce a negative or inflated cost."""
        price = ModelPrice(input=1.0, output=1.0, cache_read=0.1)
        assert price.cost(100, 0, cache_read_tokens=500) == pytest.approx(100 * 0.1e-6)

    def test_known_real_world_call(self) -> None:
        """A gpt-4o-mini call with a cached prefix costs what OpenAI bills."""
        cost = PriceTable.default().cost(
            "gpt-4o-mini", input_tokens=2_000, output_tokens=300, cache_read_tokens=1_024
        )
        assert cost == pytest.approx((976 * 0.15 + 1_024 * 0.075 + 300 * 0.60) * 1e-6)


class TestOverrides:
    def test_set_from_code(self) -> None:
        """A price set in code wins over the built-in one and is used for its suffixes."""
        table = PriceTable.default()
        table.set("gpt-4o", ModelPrice(1.0, 1.0))
        assert table.cost(
            "gpt-4o-2024-08-06", input_tokens=1_000_000, output_tokens=0
        ) == pytest.approx(1.0)

    def test_yaml_file(self, tmp_path) -> None:
        """A YAML file adds and replaces models on a copy of the table."""
        path = tmp_path / "prices.yaml"
        path.write_text(
            "models:\n  my-ft:\n    input: 3\n    output: 12\n    cache_read: 0.3\n  gpt-4o:\n    input: 1\n    output: 2\n"
        )
        base = PriceTable.default()
        merged = base.merged_with_yaml(path)
        assert merged.lookup("my-ft") == ModelPrice(3, 12, 0.3)
        assert merged.lookup("gpt-4o") == ModelPrice(1, 2)
        assert base.lookup("gpt-4o") == ModelPrice(2.50, 10.0, 1.25)

    @pytest.mark.parametrize(
        ("text", "needle"),
        [
            ("models: [1, 2]", "'models' key"),
            ("just text", "'models' key"),
            ("models:\n  m: 3\n", "expected a mapping"),
            ("models:\n  m: {input: 1}\n", "missing ['output']"),
            ("models:\n  m: {input: 1, output: -2}\n", "finite number >= 0"),
            ("models:\n  m: {input: 1, output: two}\n", "must be a number"),
            ("models:\n  m: {input: 1, output: 2, cached: 1}\n", "unknown key(s) ['cached']"),
            ("models: {m: {input: 1, output: [}", "not valid YAML"),
        ],
    )
    def test_malformed_file_is_named(self, tmp_path, text: str, needle: str) -> None:
        """A malformed price file raises PriceTableError that names the problem."""
        path = tmp_path / "prices.yaml"
        path.write_text(text)
        with pytest.raises(PriceTableError) as info:
            PriceTable.default().merged_with_yaml(path)
        assert needle in str(info.value)

    def test_missing_file(self, tmp_path) -> None:
        """A missing price file names the path."""
        with pytest.raises(PriceTableError, match="cannot read price file"):
            PriceTable.default().merged_with_yaml(tmp_path / "nope.yaml")

    def test_bad_price_from_code(self) -> None:
        """A NaN price set from code is refused."""
        with pytest.raises(PriceTableError, match="'input'"):
            PriceTable().set("x", ModelPrice(float("nan"), 1.0))

    def test_default_table_is_shared(self) -> None:
        """default_price_table() returns the same process-wide table each time."""
        assert default_price_table() is default_price_table()
