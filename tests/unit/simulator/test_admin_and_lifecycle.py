"""Admin HTTP routes (faults switched from another process), start/stop, and the CLI."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading

import anthropic
import httpx
import openai
import pytest

from llmpulse.errors import SimulatorError
from llmpulse.simulator import LLMSimulator, SimulatorConfig

USER = [{"role": "user", "content": "hello there"}]


class TestAdminRoutes:
    def test_post_faults_changes_them_at_runtime(self, sim: LLMSimulator) -> None:
        """POST /_sim/faults merges settings into the faults in force; GET reads them back."""
        with httpx.Client(base_url=sim.url) as http:
            r = http.post("/_sim/faults", json={"faults": {"error_rate": 1.0}})
            assert r.status_code == 200 and r.json()["faults"]["error_rate"] == 1.0
            assert (
                http.post(
                    "/v1/chat/completions", json={"model": "gpt-4o", "messages": USER}
                ).status_code
                == 500
            )
            http.post("/_sim/faults", json={"faults": {"latency_median_ms": 1}})
            assert (
                http.get("/_sim/faults").json()["faults"]["error_rate"] == 1.0
            )  # merged, not replaced
            http.post("/_sim/faults", json={"faults": {}, "replace": True})
            assert http.get("/_sim/faults").json()["faults"]["error_rate"] == 0.0

    def test_post_faults_for_one_model(self, sim: LLMSimulator) -> None:
        """A model key scopes the change to that model."""
        with httpx.Client(base_url=sim.url) as http:
            http.post("/_sim/faults", json={"model": "gpt-4o", "faults": {"model_down": True}})
            down = http.post("/v1/chat/completions", json={"model": "gpt-4o", "messages": USER})
            up = http.post("/v1/chat/completions", json={"model": "gpt-4o-mini", "messages": USER})
            assert (down.status_code, up.status_code) == (503, 200)
            assert (
                http.get("/_sim/faults", params={"model": "gpt-4o"}).json()["faults"]["model_down"]
                is True
            )

    def test_bad_fault_settings_are_400_with_the_reason(self, sim: LLMSimulator) -> None:
        """Unknown or out-of-range settings are refused with a message naming them."""
        with httpx.Client(base_url=sim.url) as http:
            unknown = http.post("/_sim/faults", json={"faults": {"eror_rate": 1}})
            out_of_range = http.post("/_sim/faults", json={"faults": {"error_rate": 7}})
            not_json = http.post("/_sim/faults", content=b"nope")
        assert unknown.status_code == 400 and "eror_rate" in unknown.json()["error"]
        assert out_of_range.status_code == 400 and "error_rate" in out_of_range.json()["error"]
        assert not_json.status_code == 400

    def test_fail_next_requests_and_reset(self, sim: LLMSimulator) -> None:
        """POST /_sim/fail_next queues failures, /_sim/requests shows them served, /_sim/reset forgets."""
        with httpx.Client(base_url=sim.url) as http:
            assert http.post(
                "/_sim/fail_next", json={"n": 2, "status": 429, "retry_after": 3}
            ).json() == {"pending": 2}
            r = http.post("/v1/chat/completions", json={"model": "gpt-4o", "messages": USER})
            assert r.status_code == 429 and r.headers["retry-after"] == "3"
            log = http.get("/_sim/requests").json()["requests"]
            assert [(x["status"], x["fault"]) for x in log] == [(429, "rate_limit")]
            assert http.post("/_sim/fail_next", json={"n": 1, "kind": "bogus"}).status_code == 400
            http.post("/_sim/reset")
            assert http.get("/_sim/requests").json()["requests"] == []
            assert sim.pending_failures == 0

    def test_health(self, sim: LLMSimulator) -> None:
        """GET /_sim/health answers ok with the served models."""
        with httpx.Client(base_url=sim.url) as http:
            body = http.get("/_sim/health").json()
        assert body["ok"] is True and "gpt-4o" in body["models"]


class TestLifecycle:
    def test_start_reports_a_real_port_and_stop_frees_it(self) -> None:
        """start() binds a free port, base_url points at it, stop() ends the thread; stop twice is fine."""
        sim = LLMSimulator().start()
        assert sim.port > 0 and sim.base_url == f"http://127.0.0.1:{sim.port}/v1"
        assert sim.running
        sim.stop()
        sim.stop()
        assert not sim.running
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{sim.url}/_sim/health")

    def test_stop_does_not_wait_for_a_slow_request(self) -> None:
        """stop() answers a request still waiting on a long latency with 503 and ends the thread."""
        sim = LLMSimulator().start()
        sim.fail_next(1, kind="slow", delay_s=60)
        errors: list[BaseException] = []

        def slow_call() -> None:
            with openai.OpenAI(base_url=sim.base_url, api_key="x", max_retries=0) as c:
                try:
                    c.chat.completions.create(model="gpt-4o", messages=USER)
                except openai.APIError as exc:
                    errors.append(exc)

        caller = threading.Thread(target=slow_call)
        caller.start()
        while sim.pending_failures != 0:
            threading.Event().wait(0.01)
        sim.stop(timeout=10)
        caller.join(10)
        assert not sim.running and not caller.is_alive()
        assert len(errors) == 1
        assert [r.fault for r in sim.requests] == ["shutdown"]

    def test_busy_port_is_a_clear_error(self) -> None:
        """Starting on a port that is taken raises SimulatorError naming the port."""
        with LLMSimulator() as first, pytest.raises(SimulatorError, match=str(first.port)):
            LLMSimulator(SimulatorConfig(port=first.port)).start()

    def test_bad_config_is_refused(self) -> None:
        """A bad model list or port raises SimulatorError at construction."""
        with pytest.raises(SimulatorError, match="models"):
            SimulatorConfig(models={})
        with pytest.raises(SimulatorError, match="port"):
            SimulatorConfig(port=70000)
        with pytest.raises(SimulatorError, match="context_window"):
            SimulatorConfig(models={"m": {"context_window": 0}})

    def test_port_before_start_is_an_error(self) -> None:
        """Asking for the port of a simulator not started says to call start()."""
        with pytest.raises(SimulatorError, match="start"):
            _ = LLMSimulator().base_url


# A shell starts background jobs with SIGINT ignored, and the child would inherit that (so
# Ctrl-C could never reach it): the simulator under test gets Python's own handler back.
_WITH_CTRL_C = "import signal; signal.signal(signal.SIGINT, signal.default_int_handler); "


class TestCli:
    def test_simulate_llm_serves_until_interrupted(self) -> None:
        """`llmpulse simulate-llm --port 0` prints its base URL, serves the openai client, and exits on Ctrl-C."""
        code = _WITH_CTRL_C + "from llmpulse.cli.main import main; main()"
        proc = subprocess.Popen(
            [
                sys.executable,
                "-c",
                code,
                "simulate-llm",
                "--port",
                "0",
                "--seed",
                "3",
                "--down",
                "gpt-4o",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        try:
            # The whole banner, line by line: communicate() reads the pipe past what readline
            # already buffered, so a line read here would be missing from its output.
            banner = [proc.stdout.readline()]
            while banner[-1] and "Press Ctrl-C" not in banner[-1]:
                banner.append(proc.stdout.readline())
            base_url = banner[0].rsplit(" at ", 1)[1].strip()
            with openai.OpenAI(base_url=base_url, api_key="sim", max_retries=0) as c:
                assert c.chat.completions.create(model="gpt-4o-mini", messages=USER).choices
                with pytest.raises(openai.InternalServerError):
                    c.chat.completions.create(model="gpt-4o", messages=USER)
            root = base_url.removesuffix("/v1")
            with anthropic.Anthropic(base_url=root, api_key="sim", max_retries=0) as claude:
                reply = claude.messages.create(
                    model="claude-haiku-4-5", max_tokens=20, messages=USER
                )
                assert reply.content[0].text
            proc.send_signal(signal.SIGINT)
            out, _ = proc.communicate(timeout=60)
            assert f"Anthropic's Messages API is served too, at {root}/v1/messages" in "".join(
                banner
            )
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
        assert proc.returncode == 0
        assert "simulator stopped" in out

    def test_ctrl_c_right_after_the_url_still_stops_the_server(self) -> None:
        """Ctrl-C while the banner is still printing stops the server thread (it used to hang)."""
        code = _WITH_CTRL_C + "from llmpulse.cli.main import main; main()"
        proc = subprocess.Popen(
            [sys.executable, "-c", code, "simulate-llm", "--port", "0"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        try:
            assert " at http" in proc.stdout.readline()
            proc.send_signal(signal.SIGINT)
            out, _ = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
        assert proc.returncode == 0
        assert "simulator stopped" in out

    def test_bad_option_exits_2_with_the_reason(self) -> None:
        """An out-of-range option exits 2 and names the setting."""
        code = "from llmpulse.cli.main import main; main()"
        proc = subprocess.run(
            [sys.executable, "-c", code, "simulate-llm", "--port", "0", "--error-rate", "2"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert proc.returncode == 2
        assert "error_rate" in proc.stderr


class TestResetIsolation:
    def test_request_in_flight_during_reset_is_not_logged(self, sim: LLMSimulator) -> None:
        """A slow request that started before reset() does not leak into the new log."""
        sim.fail_next(1, kind="slow", delay_s=0.2)
        with (
            openai.OpenAI(base_url=sim.base_url, api_key="x", max_retries=0, timeout=0.05) as c,
            pytest.raises(openai.APITimeoutError),
        ):
            c.chat.completions.create(model="gpt-4o-mini", messages=USER)
        sim.reset()
        # A later request whose own delay ends after the abandoned one's: the server's timers
        # fire in order, so once it is answered the abandoned request has finished (and would
        # have been logged, were reset() not to forget it), without sleeping for a guess.
        sim.fail_next(1, kind="slow", delay_s=0.6)
        with openai.OpenAI(base_url=sim.base_url, api_key="x", max_retries=0, timeout=30) as c:
            c.chat.completions.create(model="gpt-4o", messages=USER)
        assert [(r.model, r.fault) for r in sim.requests] == [("gpt-4o", "slow")]

    def test_request_in_flight_without_reset_is_logged(self, sim: LLMSimulator) -> None:
        """The same abandoned request is logged when no reset happens (the test above can fail)."""
        sim.fail_next(1, kind="slow", delay_s=0.2)
        with (
            openai.OpenAI(base_url=sim.base_url, api_key="x", max_retries=0, timeout=0.05) as c,
            pytest.raises(openai.APITimeoutError),
        ):
            c.chat.completions.create(model="gpt-4o-mini", messages=USER)
        sim.fail_next(1, kind="slow", delay_s=0.6)
        with openai.OpenAI(base_url=sim.base_url, api_key="x", max_retries=0, timeout=30) as c:
            c.chat.completions.create(model="gpt-4o", messages=USER)
        assert [(r.model, r.fault) for r in sim.requests] == [
            ("gpt-4o-mini", "slow"),
            ("gpt-4o", "slow"),
        ]


class TestPublicSurface:
    def test_all_is_pinned(self) -> None:
        """llmpulse.simulator exports exactly its documented names, each with a docstring."""
        import inspect

        import llmpulse.simulator

        assert sorted(llmpulse.simulator.__all__) == sorted([
            "DEFAULT_MODELS", "FAULT_KINDS", "Faults", "LLMSimulator", "ModelSpec", "RequestRecord",
            "SimulatorConfig", "estimate_prompt_tokens",
        ])  # fmt: skip
        for name in llmpulse.simulator.__all__:
            obj = getattr(llmpulse.simulator, name)
            if callable(obj):
                assert inspect.getdoc(obj), name
